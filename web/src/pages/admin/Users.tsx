/** Admin · Users: create a user, credit one with a reason, see balances, disable or enable. */
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../../api/client';
import type { AdminUser } from '../../api/types';
import { useI18n } from '../../i18n';
import { useAction, usePoll } from '../../lib/hooks';
import { idempotencyKey, parseMoney } from '../../lib/money';
import { useSession } from '../../lib/session';
import { ActionButton, DataTable, Dialog, ErrorAlert, Notice, Page, Section, SelectField } from '../../components/ui';

const PAGE_SIZE = 50;
const POLL_MS = 5000;

export function UsersPage() {
  const { t, money, date } = useI18n();
  const { user: me } = useSession();
  const [search, setSearch] = useState('');
  const [page, setPage] = useState(1);
  const [notice, setNotice] = useState<string>();
  const [crediting, setCrediting] = useState<AdminUser>();
  const q = search.trim();
  const list = usePoll(
    (signal) => unwrap(api.GET('/api/v1/users/', { params: { query: { page, pageSize: PAGE_SIZE, ...(q ? { q } : {}) } }, signal })),
    `users:${q}:${page}`,
    POLL_MS,
  );
  const users = list.data?.items ?? [];

  return (
    <Page title={t('users.title')}>
      <Section title={t('users.createHeading')}>
        <CreateUserForm
          onCreated={(name) => {
            setNotice(t('users.created', name));
            list.reload();
          }}
        />
      </Section>
      <Section title={t('users.list')}>
        <Notice>{notice}</Notice>
        <label>
          {t('users.search')}
          <input
            type="search"
            value={search}
            onChange={(e) => {
              setSearch(e.target.value);
              setPage(1);
            }}
          />
        </label>
        <DataTable
          loaded={list}
          count={users.length}
          emptyText={t('common.empty')}
          label={t('users.list')}
          head={[t('users.username'), t('users.role'), t('users.balance'), t('users.status'), t('common.created'), t('common.actions')]}
          paging={{ page, pageSize: PAGE_SIZE, total: list.data?.total ?? 0, onPage: setPage }}
        >
          {users.map((u) => (
            <tr key={u.id}>
              <td>{u.username}</td>
              <td>{u.role === 'admin' ? t('users.roleAdmin') : t('users.roleUser')}</td>
              <td className="num">{money(u.balance)}</td>
              <td>{u.disabled ? t('users.disabled') : t('users.active')}</td>
              <td>{date(String(u.createdAt))}</td>
              <td>
                <div className="actions">
                  <button type="button" onClick={() => setCrediting(u)} aria-label={`${t('users.credit')} ${u.username}`}>
                    {t('users.credit')}
                  </button>
                  {u.id !== me.id ? <DisableButton user={u} onChanged={list.reload} /> : null}
                </div>
              </td>
            </tr>
          ))}
        </DataTable>
      </Section>
      {crediting ? (
        <CreditDialog
          user={crediting}
          onClose={(message) => {
            setCrediting(undefined);
            if (message) {
              setNotice(message);
              list.reload();
            }
          }}
        />
      ) : null}
    </Page>
  );
}

function CreateUserForm({ onCreated }: { onCreated: (name: string) => void }) {
  const { t } = useI18n();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState<'user' | 'admin'>('user');
  const [balance, setBalance] = useState('');
  const action = useAction();
  const submit = (event: FormEvent) => {
    event.preventDefault();
    void action.run(async () => {
      const minor = balance.trim() ? parseMoney(balance) : 0;
      if (minor === null) throw new Error(t('users.amountInvalid'));
      const created = await unwrap(api.POST('/api/v1/users/', { body: { username: username.trim(), password, role, balance: minor } }));
      onCreated(created.username);
      setUsername('');
      setPassword('');
      setBalance('');
    });
  };
  return (
    <form className="form-grid" onSubmit={submit}>
      <label>
        {t('users.username')}
        <input name="new-username" required autoComplete="off" value={username} onChange={(e) => setUsername(e.target.value)} />
      </label>
      <label>
        {t('users.password')}
        <input
          name="new-password"
          type="password"
          required
          minLength={8}
          autoComplete="new-password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
      </label>
      <SelectField label={t('users.role')} value={role} onChange={(e) => setRole(e.target.value === 'admin' ? 'admin' : 'user')}>
        <option value="user">{t('users.roleUser')}</option>
        <option value="admin">{t('users.roleAdmin')}</option>
      </SelectField>
      <label>
        {t('users.initialBalance')}
        <input name="balance" inputMode="decimal" placeholder="0.00" value={balance} onChange={(e) => setBalance(e.target.value)} />
      </label>
      <ErrorAlert error={action.error} />
      <div className="wide">
        <button type="submit" className="primary" disabled={action.busy} aria-busy={action.busy}>
          {t('users.create')}
        </button>
      </div>
    </form>
  );
}

function CreditDialog({ user, onClose }: { user: AdminUser; onClose: (message?: string) => void }) {
  const { t, money } = useI18n();
  const [amount, setAmount] = useState('');
  const [reason, setReason] = useState('');
  // One key per dialog: submitting again after a lost answer credits once.
  const [key] = useState(idempotencyKey);
  const action = useAction();
  return (
    <Dialog
      title={t('users.creditHeading', user.username)}
      submitLabel={t('users.credit')}
      busy={action.busy}
      error={action.error}
      onSubmit={() =>
        void action.run(async () => {
          const minor = parseMoney(amount);
          if (minor === null || minor <= 0) throw new Error(t('users.amountInvalid'));
          const result = await unwrap(
            api.POST('/api/v1/users/{id}/credit', {
              params: { path: { id: user.id }, header: { 'idempotency-key': key } },
              body: { amount: minor, reason: reason.trim() },
            }),
          );
          onClose(t('users.credited', user.username, money(minor), money(result.balance)));
        })
      }
      onCancel={() => onClose()}
    >
      <div className="stack">
        <label>
          {t('users.amount')}
          <input name="amount" required inputMode="decimal" placeholder="10.00" value={amount} onChange={(e) => setAmount(e.target.value)} />
        </label>
        <label>
          {t('users.reason')}
          <input name="reason" required maxLength={500} value={reason} onChange={(e) => setReason(e.target.value)} />
        </label>
      </div>
    </Dialog>
  );
}

function DisableButton({ user, onChanged }: { user: AdminUser; onChanged: () => void }) {
  const { t } = useI18n();
  return (
    <ActionButton
      label={user.disabled ? t('users.enable') : t('users.disable')}
      run={async () => {
        await unwrap(api.PATCH('/api/v1/users/{id}', { params: { path: { id: user.id } }, body: { disabled: !user.disabled } }));
        onChanged();
      }}
    />
  );
}
