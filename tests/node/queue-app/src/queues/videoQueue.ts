import Queue from 'bull';
import { connection } from '../connection';

// a bull queue: producer and processor in one file (bull has no OpenTelemetry instrumentation)
const videos = new Queue('videos', { redis: { host: connection.host, port: connection.port } });

export const transcoded: string[] = [];

videos.process(async (job) => {
  if (job.data.id === 'broken') {
    throw new TypeError(`cannot transcode ${job.data.id}`);
  }
  transcoded.push(`transcoded ${job.data.id}`);
});

export async function requestTranscode(id: string): Promise<string> {
  const job = await videos.add({ id }, { attempts: 1 });
  return String(job.id);
}
