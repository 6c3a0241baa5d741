import { Type } from 'typebox';
import { DateTime } from '../../schemas.js';

export const Host = Type.Object(
  {
    id: Type.String(),
    status: Type.Union([Type.Literal('up'), Type.Literal('down')], { description: 'down: no heartbeat within BERTH_HOST_STALE_AFTER' }),
    dockerEndpoint: Type.String(),
    engineId: Type.String(),
    engineVersion: Type.String(),
    taskQueue: Type.String(),
    registeredAt: DateTime,
    lastHeartbeatAt: DateTime,
    containers: Type.Integer({ description: 'Its containers that are not removed (running or not)' }),
  },
  { $id: 'Host', description: 'A Docker host and its worker' },
);

export const HostList = Type.Object({ items: Type.Array(Type.Ref('Host')) });

export const HostParams = Type.Object({ id: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,62}$' }) });

export const PingResponse = Type.Object({
  hostId: Type.String(),
  engineId: Type.String(),
  version: Type.String(),
  apiVersion: Type.String(),
  os: Type.String(),
  workflowId: Type.String(),
  durationMs: Type.Integer(),
}, { $id: 'HostPing', description: "A host's engine, as its ping workflow read it" });
