import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { extract } from 'tar-stream';

/** Every file entry of a .tgz with its text. */
export async function readTgz(file: string): Promise<Map<string, string>> {
  const entries = new Map<string, string>();
  const extractor = extract();
  extractor.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
    stream.on('end', () => {
      if (header.type === 'file') entries.set(header.name, Buffer.concat(chunks).toString('utf8'));
      next();
    });
  });
  await new Promise<void>((resolve, reject) => {
    extractor.on('finish', resolve);
    extractor.on('error', reject);
    createReadStream(file).on('error', reject).pipe(createGunzip()).on('error', reject).pipe(extractor);
  });
  return entries;
}
