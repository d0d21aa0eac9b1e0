import { Router } from 'express';
import { asyncHandler } from '../middleware/asyncHandler';
import { parseCreateUserInput, userService } from '../services/userService';
import type { User } from '../models';

const router = Router();

function toPublicUser(user: User): Pick<User, 'id' | 'name' | 'email'> {
  return { id: user.id, name: user.name, email: user.email };
}

router.post(
  '/',
  asyncHandler(async (req, res) => {
    const input = parseCreateUserInput(req.body);
    const user = await userService.createUser(input);
    res.status(201).location(`${req.baseUrl}/${user.id}`).json(toPublicUser(user));
  }),
);

router.get(
  '/:id',
  asyncHandler<{ id: string }>(async (req, res) => {
    const user = await userService.getUser(req.params.id);
    res.json(toPublicUser(user));
  }),
);

export default router;
