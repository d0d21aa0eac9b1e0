import express from 'express';
import { enqueueEmail } from './queues/emailQueue';
import { requestTranscode, transcoded } from './queues/videoQueue';
import { done } from './workers/emailWorker';

const app = express();
app.use(express.json());

app.post('/emails', async (req, res) => {
  const id = await enqueueEmail(String(req.body.to));
  res.status(202).json({ id });
});

app.post('/videos', async (req, res) => {
  const id = await requestTranscode(String(req.body.id));
  res.status(202).json({ id });
});

app.get('/done', (_req, res) => {
  res.json(done);
});

app.get('/transcoded', (_req, res) => {
  res.json(transcoded);
});

app.listen(Number(process.env.PORT ?? 3000));
