/** A container's address: a link to its published port while it runs, the address as text otherwise. */
import type { Container } from '../api/types';
import { addressOf } from '../lib/containers';

export function AddressLink({ container }: { container: Container }) {
  const address = addressOf(container);
  if (!address) return <>—</>;
  if (container.state !== 'running') return <>{address.text}</>;
  return (
    <a href={address.href} target="_blank" rel="noopener noreferrer">
      {address.text}
    </a>
  );
}
