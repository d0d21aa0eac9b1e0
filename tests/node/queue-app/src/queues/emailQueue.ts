import { Queue } from 'bullmq';
import { connection } from '../connection';

const emails = new Queue('emails', { connection });

// the producer: otelize gives it a PRODUCER span (bullmq has no OpenTelemetry instrumentation)
export async function enqueueEmail(to: string): Promise<string | undefined> {
  const job = await emails.add('send', { to }, { attempts: 1 });
  return job.id;
}
