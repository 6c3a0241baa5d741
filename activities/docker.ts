/** Docker activities: they run on a host worker, against that host's engine only. */
import type Docker from 'dockerode';

export interface EngineInfo {
  hostId: string;
  engineId: string;
  version: string;
  apiVersion: string;
  os: string;
}

export function createDockerActivities(deps: { docker: Docker; hostId: string }) {
  const { docker, hostId } = deps;
  return {
    /** The engine's identity and version: proves which host's queue ran the task. */
    async engineInfo(): Promise<EngineInfo> {
      const [info, version] = await Promise.all([docker.info(), docker.version()]);
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

export type DockerActivities = ReturnType<typeof createDockerActivities>;
