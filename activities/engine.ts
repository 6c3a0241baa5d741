/** The engine's identity (host worker): the host ping's activity, against this host's engine only. */
import type Docker from 'dockerode';
import type { EngineInfo } from '../contracts/ping-host.js';
import { activityLog } from './activity-log.js';


export function createEngineActivities(deps: { docker: Docker; hostId: string }) {
  const { docker, hostId } = deps;
  return {
    /** The engine's identity and version: proves which host's queue ran the task. */
    async engineInfo(): Promise<EngineInfo> {
      // dockerode types info() as any: the engine's ID is all that is read of it.
      const [info, version] = await Promise.all([docker.info() as Promise<{ ID: unknown }>, docker.version()]);
      activityLog.info('engine answered', { hostId, engineId: String(info.ID), version: version.Version });
      return {
        hostId,
        engineId: String(info.ID),
        version: version.Version,
        apiVersion: version.ApiVersion,
        os: `${version.Os}/${version.Arch}`,
      };
    },
  };
}

export type EngineActivities = ReturnType<typeof createEngineActivities>;
