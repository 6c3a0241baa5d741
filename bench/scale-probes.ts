/**
 * What the scale bench reads beside the API: processes' CPU and memory from /proc, rows in
 * PostgreSQL and in the Temporal dev server's SQLite store, and workflow histories' sizes.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { Client } from '@temporalio/client';
import pg from 'pg';
import { pool, sleep } from './support.js';

const exec = promisify(execFile);

// ---------------------------------------------------------------- processes

interface ProcReading {
  /** CPU seconds, user + system, since the process started. */
  cpuSeconds: number;
  rssBytes: number;
  /** The kernel's high-water mark of the resident set (VmHWM). */
  peakRssBytes: number;
}

const CLOCK_TICKS = Number((await exec('getconf', ['CLK_TCK'])).stdout.trim()) || 100;

async function readProc(pid: number): Promise<ProcReading | undefined> {
  try {
    const [stat, status] = await Promise.all([readFile(`/proc/${pid}/stat`, 'utf8'), readFile(`/proc/${pid}/status`, 'utf8')]);
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { cpuSeconds: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS, rssBytes: kb('VmRSS'), peakRssBytes: kb('VmHWM') };
  } catch {
    return undefined; // gone
  }
}

export interface ProcessFigures {
  name: string;
  pid: number;
  peakRssMb: number;
  /** The highest CPU use over one sampling interval, 100 per busy core. */
  peakCpuPercent: number;
  /** CPU seconds spent in each phase the watch was told of. */
  cpuSecondsByPhase: Record<string, number>;
  /** The resident set at the end of each phase, MB (what the phase left in memory). */
  rssMbAtEndOf: Record<string, number>;
}

/** Samples the processes every `intervalMs`; `phase(name)` starts counting CPU toward that phase. */
export class ProcessWatch {
  private readonly last = new Map<number, ProcReading>();
  private readonly figures = new Map<number, ProcessFigures>();
  private lastAt = performance.now();
  private current = 'setup';
  private timer: NodeJS.Timeout | undefined;
  private sampling: Promise<void> = Promise.resolve();

  constructor(private readonly processes: Array<{ name: string; pid: number }>, private readonly intervalMs = 1000) {
    for (const { name, pid } of processes) this.figures.set(pid, { name, pid, peakRssMb: 0, peakCpuPercent: 0, cpuSecondsByPhase: {}, rssMbAtEndOf: {} });
  }

  async start() {
    await this.sample();
    this.timer = setInterval(() => void (this.sampling = this.sampling.then(() => this.sample())), this.intervalMs);
  }

  /** Closes the running phase (with a last sample) and opens the next. */
  async phase(name: string) {
    await (this.sampling = this.sampling.then(() => this.sample()));
    for (const figures of this.figures.values()) {
      const reading = this.last.get(figures.pid);
      if (reading) figures.rssMbAtEndOf[this.current] = reading.rssBytes / 2 ** 20;
    }
    this.current = name;
  }

  async stop(): Promise<ProcessFigures[]> {
    clearInterval(this.timer);
    await this.phase('stopped');
    return [...this.figures.values()];
  }

  private async sample() {
    const now = performance.now();
    const seconds = (now - this.lastAt) / 1000;
    this.lastAt = now;
    await Promise.all(this.processes.map(async ({ pid }) => {
      const reading = await readProc(pid);
      if (!reading) return;
      const figures = this.figures.get(pid)!;
      const before = this.last.get(pid);
      if (before) {
        const used = reading.cpuSeconds - before.cpuSeconds;
        figures.cpuSecondsByPhase[this.current] = (figures.cpuSecondsByPhase[this.current] ?? 0) + used;
        if (seconds >= this.intervalMs / 2000) figures.peakCpuPercent = Math.max(figures.peakCpuPercent, (100 * used) / seconds);
      }
      figures.peakRssMb = Math.max(figures.peakRssMb, reading.peakRssBytes / 2 ** 20);
      this.last.set(pid, reading);
    }));
  }
}

// ---------------------------------------------------------------- PostgreSQL

/** Rows of every table of Berth's schema (exact counts). */
export async function postgresRows(databaseUrl: string): Promise<Record<string, number>> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows: tables } = await client.query<{ name: string }>(
      "select table_name as name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE' order by 1",
    );
    const counts: Record<string, number> = {};
    for (const { name } of tables) {
      const { rows } = await client.query<{ n: string }>(`select count(*) as n from "${name}"`);
      counts[name] = Number(rows[0]!.n);
    }
    return counts;
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------- Temporal's store

/**
 * Rows of one namespace in the Temporal dev server's SQLite file, by table: tables with a
 * namespace_id column by that id, the history tables (history_node, history_tree) by the
 * namespace's runs. The server holds the file locked, so it is read as immutable (no lock):
 * a read that meets a page being written is retried.
 */
export async function temporalRows(sqliteFile: string, namespace: string): Promise<Record<string, number>> {
  const uri = `file:${sqliteFile}?immutable=1`;
  const query = async (sql: string) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return (await exec('sqlite3', ['-readonly', '-separator', '\t', uri, sql], { maxBuffer: 1 << 24 })).stdout.trim();
      } catch (error) {
        if (attempt >= 5) throw error;
        await sleep(500);
      }
    }
  };
  const quoted = namespace.replace(/'/g, "''");
  const [hex, text] = (await query(`select hex(id), id from namespaces where name = '${quoted}'`)).split('\t');
  if (!hex) throw new Error(`namespace ${namespace} not in ${sqliteFile}`);
  // The visibility store keeps the id as text (with dashes), the others as 16 bytes.
  const dashed = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`.toLowerCase();
  const ids = `(X'${hex}', '${dashed}', '${(text ?? '').replace(/'/g, "''")}')`;
  const tables = (await query(
    "select m.name from sqlite_master m join pragma_table_info(m.name) p where m.type = 'table' and p.name = 'namespace_id' order by 1",
  )).split('\n').filter(Boolean);
  const counts: Record<string, number> = {};
  const selects = tables.map((t) => `select '${t}', count(*) from ${t} where namespace_id in ${ids}`);
  const runs = `select run_id from executions where namespace_id in ${ids}`;
  selects.push(`select 'history_node', count(*) from history_node where tree_id in (${runs})`);
  selects.push(`select 'history_tree', count(*) from history_tree where tree_id in (${runs})`);
  for (const line of (await query(selects.join(' union all '))).split('\n')) {
    const [table, n] = line.split('\t');
    if (table) counts[table] = Number(n);
  }
  return counts;
}

// ---------------------------------------------------------------- histories

export interface HistoryFigures {
  /** Runs of this workflow type (continue-as-new makes several of one workflow id). */
  runs: number;
  maxEvents: number;
  maxBytes: number;
  totalEvents: number;
}

/**
 * Every run in the client's namespace, grouped by workflow type: the largest history and the
 * sum. Visibility records a run's history length when it closes, so open runs are described.
 */
export async function histories(client: Client): Promise<Record<string, HistoryFigures>> {
  const runs: Array<{ type: string; length: number; bytes: number }> = [];
  const open: Array<{ type: string; workflowId: string; runId: string }> = [];
  for await (const run of client.workflow.list()) {
    if (run.status.name === 'RUNNING') open.push({ type: run.type, workflowId: run.workflowId, runId: run.runId });
    else runs.push({ type: run.type, length: run.historyLength, bytes: run.historySize ?? 0 });
  }
  await pool(open, 16, async ({ type, workflowId, runId }) => {
    const described = await client.workflow.getHandle(workflowId, runId).describe();
    runs.push({ type, length: described.historyLength, bytes: described.historySize ?? 0 });
  });
  const byType: Record<string, HistoryFigures> = {};
  for (const { type, length, bytes } of runs) {
    const figures = (byType[type] ??= { runs: 0, maxEvents: 0, maxBytes: 0, totalEvents: 0 });
    figures.runs += 1;
    figures.maxEvents = Math.max(figures.maxEvents, length);
    figures.maxBytes = Math.max(figures.maxBytes, bytes);
    figures.totalEvents += length;
  }
  return byType;
}
