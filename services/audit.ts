/** The audit log as the API reads and writes it (repositories/audit.ts holds the queries). */
import type { Database } from '../db/client.js';
import * as repo from '../repositories/audit.js';
import type { PageRequest } from '../repositories/paging.js';

export type { AuditEntry } from '../repositories/audit.js';

export interface AuditQuery {
  actor?: string | undefined;
  action?: string | undefined;
  target?: string | undefined;
  outcome?: 'success' | 'failure' | undefined;
  from?: string | undefined;
  to?: string | undefined;
}

const filterOf = (q: AuditQuery): repo.AuditFilter => ({
  ...(q.actor ? { actor: q.actor } : {}),
  ...(q.action ? { action: q.action } : {}),
  ...(q.target ? { target: q.target } : {}),
  ...(q.outcome ? { outcome: q.outcome } : {}),
  ...(q.from ? { from: new Date(q.from) } : {}),
  ...(q.to ? { to: new Date(q.to) } : {}),
});

export function createAuditService(db: Database) {
  return {
    append: (entries: repo.AuditEntry[]) => repo.appendAudit(db, entries),
    all: (q: AuditQuery, page: PageRequest) => repo.auditPage(db, filterOf(q), page),
    ofUser: (userId: string, q: AuditQuery, page: PageRequest) => repo.userAuditPage(db, userId, filterOf(q), page),
  };
}

export type AuditService = ReturnType<typeof createAuditService>;
