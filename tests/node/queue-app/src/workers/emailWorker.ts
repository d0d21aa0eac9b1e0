import { Job, Worker } from 'bullmq';
import { connection } from '../connection';

export const EMAILS = 'emails';
export const done: string[] = [];

export const emailWorker = new Worker(EMAILS, async (job: Job<{ to: string }>) => {
  if (job.data.to.endsWith('@invalid')) {
    done.push(`failed ${job.data.to}`);
    throw new RangeError(`cannot deliver to ${job.data.to}`);
  }
  await new Promise((resolve) => setTimeout(resolve, 5));
  done.push(`sent ${job.data.to}`);
  return { sent: job.data.to };
}, { connection });
