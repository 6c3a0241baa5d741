/** Ledger: the caller's entries, newest first, paged: kind, amount, balance after, reason. */
import { useState } from 'react';
import { api, unwrap } from '../api/client';
import { useI18n } from '../i18n';
import { usePoll } from '../lib/hooks';
import { DataTable, Page } from '../components/ui';

const PAGE_SIZE = 25;
const POLL_MS = 10_000;

export function LedgerPage() {
  const { t, money, date } = useI18n();
  const [page, setPage] = useState(1);
  const list = usePoll(
    (signal) => unwrap(api.GET('/api/v1/users/me/ledger', { params: { query: { page, pageSize: PAGE_SIZE } }, signal })),
    `ledger:${page}`,
    POLL_MS,
  );
  const entries = list.data?.items ?? [];
  return (
    <Page title={t('ledger.title')}>
      <DataTable
        loaded={list}
        count={entries.length}
        emptyText={t('ledger.none')}
        label={t('ledger.title')}
        head={[t('common.date'), t('ledger.kind'), t('ledger.amount'), t('ledger.balanceAfter'), t('ledger.reason')]}
        paging={{ page, pageSize: PAGE_SIZE, total: list.data?.total ?? 0, onPage: setPage }}
      >
        {entries.map((entry) => (
          <tr key={entry.id}>
            <td>{date(String(entry.createdAt))}</td>
            <td>{entry.kind}</td>
            <td className={entry.amount < 0 ? 'num debit' : 'num credit'}>{money(entry.amount)}</td>
            <td className="num">{money(entry.balanceAfter)}</td>
            <td className="wrap">{entry.reason}</td>
          </tr>
        ))}
      </DataTable>
    </Page>
  );
}
