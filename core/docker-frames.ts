/**
 * Docker's multiplexed log stream (containers without a TTY): frames of an 8-byte
 * header (stream type, 3 zero bytes, big-endian length) and a payload. This splits
 * it into lines per stream, whatever the chunk boundaries.
 */
export type LogStream = 'stdout' | 'stderr';

export class FrameDecoder {
  private buffer: Buffer = Buffer.alloc(0);
  private readonly partial: Record<LogStream, string> = { stdout: '', stderr: '' };

  /** Feeds a chunk; returns the complete lines it finished, in order. */
  push(chunk: Buffer): Array<{ stream: LogStream; line: string }> {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    const out: Array<{ stream: LogStream; line: string }> = [];
    while (this.buffer.length >= 8) {
      const type = this.buffer[0];
      const length = this.buffer.readUInt32BE(4);
      if (this.buffer.length < 8 + length) break;
      const payload = this.buffer.subarray(8, 8 + length).toString('utf8');
      this.buffer = this.buffer.subarray(8 + length);
      const stream: LogStream = type === 2 ? 'stderr' : 'stdout';
      const text = this.partial[stream] + payload;
      const lines = text.split('\n');
      this.partial[stream] = lines.pop()!;
      for (const line of lines) out.push({ stream, line });
    }
    return out;
  }

  /** What is left when the stream ends: unterminated last lines. */
  end(): Array<{ stream: LogStream; line: string }> {
    const out: Array<{ stream: LogStream; line: string }> = [];
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.partial[stream]) out.push({ stream, line: this.partial[stream] });
      this.partial[stream] = '';
    }
    return out;
  }
}

export interface StatsSample {
  at: string;
  cpuPercent: number;
  memoryUsage: number;
  memoryLimit: number;
  networkRx: number;
  networkTx: number;
  blockRead: number;
  blockWrite: number;
  pids: number;
}

export interface DockerStats {
  read: string;
  cpu_stats?: { cpu_usage?: { total_usage?: number; percpu_usage?: number[] }; system_cpu_usage?: number; online_cpus?: number };
  precpu_stats?: { cpu_usage?: { total_usage?: number }; system_cpu_usage?: number };
  memory_stats?: { usage?: number; limit?: number; stats?: { cache?: number; inactive_file?: number } };
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }>;
  blkio_stats?: { io_service_bytes_recursive?: Array<{ op: string; value: number }> | null };
  pids_stats?: { current?: number };
}

/** One Docker stats message as a sample, computed the way `docker stats` does. */
export function toStatsSample(raw: DockerStats): StatsSample {
  const cpu = raw.cpu_stats ?? {};
  const pre = raw.precpu_stats ?? {};
  const cpuDelta = (cpu.cpu_usage?.total_usage ?? 0) - (pre.cpu_usage?.total_usage ?? 0);
  const systemDelta = (cpu.system_cpu_usage ?? 0) - (pre.system_cpu_usage ?? 0);
  const cpus = cpu.online_cpus ?? cpu.cpu_usage?.percpu_usage?.length ?? 1;
  const cpuPercent = systemDelta > 0 && cpuDelta > 0 ? Math.round((cpuDelta / systemDelta) * cpus * 10000) / 100 : 0;
  const mem = raw.memory_stats ?? {};
  const cache = mem.stats?.inactive_file ?? mem.stats?.cache ?? 0;
  let networkRx = 0;
  let networkTx = 0;
  for (const net of Object.values(raw.networks ?? {})) {
    networkRx += net.rx_bytes ?? 0;
    networkTx += net.tx_bytes ?? 0;
  }
  let blockRead = 0;
  let blockWrite = 0;
  for (const entry of raw.blkio_stats?.io_service_bytes_recursive ?? []) {
    if (/^read$/i.test(entry.op)) blockRead += entry.value;
    if (/^write$/i.test(entry.op)) blockWrite += entry.value;
  }
  return {
    at: raw.read,
    cpuPercent,
    memoryUsage: Math.max(0, (mem.usage ?? 0) - cache),
    memoryLimit: mem.limit ?? 0,
    networkRx,
    networkTx,
    blockRead,
    blockWrite,
    pids: raw.pids_stats?.current ?? 0,
  };
}
