/** The API's models the console shows: the OpenAPI document's named components. */
import type { components } from './schema';

type Schemas = components['schemas'];

export type User = Schemas['User'];
export type AdminUser = Schemas['AdminUser'];
export type Image = Schemas['Image'];
export type Container = Schemas['Container'];
export type DcuTask = Schemas['DcuTask'];
export type DcuState = DcuTask['state'];
export type LedgerEntry = Schemas['LedgerEntry'];
export type StatsSample = Schemas['StatsSample'];
export type StatsError = Schemas['StatsError'];
export type Host = Schemas['Host'];
export type Pull = Schemas['Pull'];
export type PullProgress = NonNullable<Pull['progress']>;
export type ReleaseOverview = Schemas['ReleaseOverview'];
export type ReleaseRun = ReleaseOverview['items'][number];
