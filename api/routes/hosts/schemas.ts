import { Type } from 'typebox';
import { DateTime } from '../../schemas.js';

export const Host = Type.Object({
  id: Type.String(),
  status: Type.Union([Type.Literal('up'), Type.Literal('down')]),
  dockerEndpoint: Type.String(),
  engineId: Type.String(),
  engineVersion: Type.String(),
  taskQueue: Type.String(),
  registeredAt: DateTime,
  lastHeartbeatAt: DateTime,
});

export const HostList = Type.Object({ items: Type.Array(Host) });

export const HostParams = Type.Object({ id: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,62}$' }) });

export const PingResponse = Type.Object({
  hostId: Type.String(),
  engineId: Type.String(),
  version: Type.String(),
  apiVersion: Type.String(),
  os: Type.String(),
  workflowId: Type.String(),
  durationMs: Type.Integer(),
});
