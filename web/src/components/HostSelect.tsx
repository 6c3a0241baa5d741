/**
 * The optional select "Host" ("Any host" by default). An admin chooses among every host; a user
 * among the hosts their images, and the public ones, are on (the host list is an admin route).
 */
import { api, unwrap } from '../api/client';
import { useI18n } from '../i18n';
import { usePoll } from '../lib/hooks';
import { useSession } from '../lib/session';
import { SelectField } from './ui';

export function HostSelect({ value, onChange }: { value: string; onChange: (host: string) => void }) {
  const { t } = useI18n();
  const { user } = useSession();
  const isAdmin = user.role === 'admin';
  const hosts = usePoll(
    async (signal) =>
      isAdmin
        ? (await unwrap(api.GET('/api/v1/hosts/', { signal }))).items.map((h) => h.id)
        : (await unwrap(api.GET('/api/v1/images/', { params: { query: { page: 1, pageSize: 200 } }, signal }))).items.map((i) => i.host),
    `host-choices:${user.id}`,
  );
  const choices = [...new Set(hosts.data ?? [])].sort();
  return (
    <SelectField label={t('images.host')} name="host" value={value} onChange={(e) => onChange(e.target.value)}>
      <option value="">{t('images.anyHost')}</option>
      {choices.map((h) => (
        <option key={h} value={h}>
          {h}
        </option>
      ))}
    </SelectField>
  );
}
