import express from 'express';
import { Queue } from 'bullmq';
import { connection } from './connection';
import { EMAILS, done } from './workers/emailWorker';

const emails = new Queue(EMAILS, { connection });
const app = express();
app.use(express.json());

app.post('/emails', async (req, res) => {
  const job = await emails.add('send', { to: String(req.body.to) }, { attempts: 1 });
  res.status(202).json({ id: job.id });
});

app.get('/done', (_req, res) => {
  res.json(done);
});

app.listen(Number(process.env.PORT ?? 3000));
