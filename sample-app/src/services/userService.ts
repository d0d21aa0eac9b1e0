import { Cache, cache } from '../utils/cache';
import { Database, db } from '../utils/database';
import { ConflictError, NotFoundError, ValidationError } from '../errors';
import type { User } from '../models';

export interface CreateUserInput {
  name: string;
  email: string;
}

const USER_CACHE_TTL_SECONDS = 300;
const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function userKey(id: string): string {
  return `user:${id}`;
}

export function parseCreateUserInput(body: unknown): CreateUserInput {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ValidationError('request body must be a JSON object');
  }
  const { name, email } = body as Record<string, unknown>;
  if (typeof name !== 'string' || name.trim().length === 0 || name.length > 100) {
    throw new ValidationError('name must be a non-empty string of at most 100 characters');
  }
  if (typeof email !== 'string' || !EMAIL_PATTERN.test(email)) {
    throw new ValidationError('email must be a valid email address');
  }
  return { name: name.trim(), email: email.trim().toLowerCase() };
}

export class UserService {
  constructor(
    private readonly db: Database,
    private readonly cache: Cache,
  ) {}

  async createUser(input: CreateUserInput): Promise<User> {
    const existing = await this.getUserByEmail(input.email);
    if (existing !== undefined) {
      throw new ConflictError(`a user with email ${input.email} already exists`);
    }
    const user = await this.db.insert<User>('users', {
      name: input.name,
      email: input.email,
      createdAt: new Date().toISOString(),
    });
    await this.cache.set(userKey(user.id), user, USER_CACHE_TTL_SECONDS);
    return user;
  }

  /** Read-through cached lookup; throws NotFoundError for unknown ids. */
  async getUser(id: string): Promise<User> {
    const cached = await this.cache.get<User>(userKey(id));
    if (cached !== undefined) {
      return cached;
    }
    const user = await this.db.findById<User>('users', id);
    if (user === undefined) {
      throw new NotFoundError('user', id);
    }
    await this.cache.set(userKey(id), user, USER_CACHE_TTL_SECONDS);
    return user;
  }

  async getUserByEmail(email: string): Promise<User | undefined> {
    const normalized = email.trim().toLowerCase();
    const matches = await this.db.query<User>('users', (row) => row.email === normalized);
    return matches[0];
  }
}

export const userService = new UserService(db, cache);
