import express from 'express';
import { enqueueEmail } from './queues/emailQueue';
import { done } from './workers/emailWorker';

const app = express();
app.use(express.json());

app.post('/emails', async (req, res) => {
  const id = await enqueueEmail(String(req.body.to));
  res.status(202).json({ id });
});

app.get('/done', (_req, res) => {
  res.json(done);
});

app.listen(Number(process.env.PORT ?? 3000));
