/**
 * Reading the API's streamed answers with fetch: Server-Sent Events (a pull's progress) and
 * text that keeps coming (a followed log). Both end when the signal aborts.
 */
import { fetchApi } from './client';

/** Calls `onChunk` with each piece of text as it arrives, until the body ends. */
export async function readText(url: string, signal: AbortSignal, onChunk: (text: string) => void): Promise<void> {
  const response = await fetchApi(url, signal);
  if (!response.body) return;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      onChunk(value);
    }
  } finally {
    reader.releaseLock();
  }
}

export interface ServerEvent {
  event: string;
  data: string;
}

/** Parses `event:`/`data:` blocks (text/event-stream) and calls `onEvent` for each. */
export async function readEvents(url: string, signal: AbortSignal, onEvent: (event: ServerEvent) => void): Promise<void> {
  let buffer = '';
  await readText(url, signal, (chunk) => {
    buffer += chunk.replace(/\r\n?/g, '\n');
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length > 0) onEvent({ event, data: data.join('\n') });
    }
  });
}
