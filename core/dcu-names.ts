/**
 * Names of a DCU task's artifacts: the MinIO object and the local archive. No Node
 * imports: the workflow computes them once it knows the pulled image's id.
 */
import { safeObjectComponent, type ImageRef } from './image-ref.js';

/** The first 12 hex characters of an image id or digest ("sha256:0123…" → "0123456789ab"). */
export function shortDigest(digest: string): string {
  const hex = digest.includes(':') ? digest.slice(digest.indexOf(':') + 1) : digest;
  const short = hex.toLowerCase().replace(/[^0-9a-f]/g, '').slice(0, 12);
  return short === '' ? 'unknown' : short;
}

/**
 * `<username>/<repository>_<tag>-<short digest>.tar.gz`, every part through
 * safeObjectComponent: exactly one '/', no '..', no characters outside [A-Za-z0-9._-].
 */
export function dcuObjectName(username: string, ref: Pick<ImageRef, 'repository' | 'tag'>, imageId: string): string {
  const base = safeObjectComponent(`${ref.repository}_${ref.tag ?? 'digest'}`).slice(0, 100);
  return `${safeObjectComponent(username)}/${base}-${shortDigest(imageId)}.tar.gz`;
}

/** The local archive: the task id keeps archives of the same image apart. */
export function dcuGzipFileName(taskId: string, objectName: string): string {
  const base = objectName.slice(objectName.lastIndexOf('/') + 1);
  return `${safeObjectComponent(taskId)}_${base}`;
}

/** A local archive name is one safe path component ending in .tar.gz. */
export const DCU_GZIP_FILE = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,250}\.tar\.gz$/;
