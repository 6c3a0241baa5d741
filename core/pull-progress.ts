/**
 * Reads Docker's pull stream messages to the end: per-layer progress, an overall
 * percent, and the failure that the daemon reports INSIDE the stream (a pull whose
 * HTTP call succeeded may still fail: unknown tag, unauthorized, disk full...).
 */

export interface LayerProgress {
  status: string;
  current: number;
  total: number;
}

export interface PullSnapshot {
  percent: number;
  bytesDone: number;
  bytesTotal: number;
  layers: Record<string, LayerProgress>;
  status?: string;
}

export interface PullMessage {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string; code?: number };
}

export class PullStreamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PullStreamError';
  }
}

const DONE = new Set(['Pull complete', 'Already exists']);

export class PullProgress {
  private readonly layers = new Map<string, LayerProgress>();
  private lastStatus: string | undefined;

  /** Applies one message; throws PullStreamError when the daemon reports an error. */
  apply(message: PullMessage): void {
    if (message.error || message.errorDetail) {
      throw new PullStreamError(message.errorDetail?.message ?? message.error ?? 'pull failed');
    }
    const { id, status } = message;
    if (!status) return;
    this.lastStatus = status;
    // Messages without a layer id ("Pulling from ...", "Digest: ...", "Status: ...") are summary lines.
    if (!id || !/^[0-9a-f]{12,64}$/.test(id)) return;
    const layer = this.layers.get(id) ?? { status, current: 0, total: 0 };
    layer.status = status;
    const detail = message.progressDetail;
    if (status === 'Downloading' && detail?.total) {
      layer.total = detail.total;
      layer.current = Math.min(detail.current ?? 0, detail.total);
    } else if (status === 'Download complete' || DONE.has(status)) {
      layer.current = layer.total;
    }
    this.layers.set(id, layer);
  }

  snapshot(): PullSnapshot {
    const layers = Object.fromEntries([...this.layers].map(([id, l]) => [id, { ...l }]));
    let bytesDone = 0;
    let bytesTotal = 0;
    let fraction = 0;
    for (const layer of this.layers.values()) {
      bytesDone += layer.current;
      bytesTotal += layer.total;
      fraction += DONE.has(layer.status)
        ? 1
        : layer.status === 'Extracting' || layer.status === 'Verifying Checksum' || layer.status === 'Download complete'
          ? 0.9
          : layer.total > 0
            ? (0.9 * layer.current) / layer.total
            : 0;
    }
    const percent = this.layers.size === 0 ? 0 : Math.floor((100 * fraction) / this.layers.size);
    return { percent, bytesDone, bytesTotal, layers, ...(this.lastStatus ? { status: this.lastStatus } : {}) };
  }

  /** Call when the stream has ended without an error. */
  complete(): PullSnapshot {
    for (const layer of this.layers.values()) {
      layer.status = DONE.has(layer.status) ? layer.status : 'Pull complete';
      layer.current = layer.total;
    }
    return { ...this.snapshot(), percent: 100 };
  }
}
