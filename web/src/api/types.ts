/** The API's models the console shows, named after the OpenAPI document's components. */
import type { paths, components } from './schema';

type Schemas = components['schemas'];
type Json<P extends keyof paths, M extends 'get' | 'post', S extends number> = paths[P][M] extends {
  responses: Record<S, { content: { 'application/json': infer T } }>;
}
  ? T
  : never;

export type User = Schemas['User'];
export type AdminUser = Schemas['AdminUser'];
export type Image = Schemas['Image'];
export type Container = Schemas['Container'];
export type DcuTask = Schemas['DcuTask'];
export type DcuState = DcuTask['state'];
export type LedgerEntry = Schemas['LedgerEntry'];
export type StatsSample = Schemas['StatsSample'];
export type StatsError = Schemas['StatsError'];
export type Host = Json<'/api/v1/hosts/', 'get', 200>['items'][number];
export type PullStatus = Json<'/api/v1/images/pulls/{pullId}', 'get', 200>;
export type PullProgress = NonNullable<PullStatus['progress']>;
export type ReleaseOverview = Json<'/api/v1/admin/releases/', 'get', 200>;
export type ReleaseRun = ReleaseOverview['items'][number];
export type ReleaseDetail = Json<'/api/v1/admin/releases/{id}', 'get', 200>;
