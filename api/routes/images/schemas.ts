import { Type } from 'typebox';
import { HOST_ID } from '../../../core/config.js';
import { PULL_ID } from '../../../contracts/pull-image.js';
import { DateTime, Pagination, Uuid } from '../../schemas.js';

export const Image = Type.Object(
  {
    id: Uuid,
    userId: Uuid,
    reference: Type.String({ description: 'Normalized reference, e.g. docker.io/library/busybox:latest' }),
    repository: Type.String(),
    tag: Type.Union([Type.String(), Type.Null()]),
    digest: Type.Union([Type.String(), Type.Null()]),
    imageId: Type.String({ description: 'sha256:... as Docker reports it' }),
    sizeBytes: Type.Integer(),
    sizeMb: Type.Number({ description: 'Size in MB, one decimal' }),
    host: Type.String(),
    ports: Type.Array(Type.String()),
    visibility: Type.Union([Type.Literal('private'), Type.Literal('public')]),
    charged: Type.Integer({ description: 'Minor units charged for this image' }),
    pullId: Type.Union([Type.String(), Type.Null()]),
    createdAt: DateTime,
  },
  { $id: 'Image', description: 'An image on a host, private to its owner or public' },
);
export const ImageRef = Type.Ref('Image');

export const ImagePage = Type.Object({ items: Type.Array(ImageRef), total: Type.Integer() });

export const ListQuery = Type.Intersect([Pagination, Type.Object({ userId: Type.Optional(Uuid) })]);

export const PullBody = Type.Object(
  {
    image: Type.String({ minLength: 1, maxLength: 1024, description: 'busybox, 127.0.0.1:5000/library/busybox:1.35, repo@sha256:...' }),
    host: Type.Optional(Type.String({ minLength: 1, maxLength: 63, pattern: HOST_ID.source })),
  },
  { additionalProperties: false },
);

export const WaitQuery = Type.Object({ wait: Type.Boolean({ default: false }) });

export const PullAccepted = Type.Object({ pullId: Type.String(), image: Type.String(), host: Type.String() });

export const PullParams = Type.Object({ pullId: Type.String({ pattern: PULL_ID.source }) });
export const ImageParams = Type.Object({ id: Uuid });

export const LayerProgress = Type.Object({ status: Type.String(), current: Type.Integer(), total: Type.Integer() });
export const Progress = Type.Object({
  percent: Type.Integer(),
  bytesDone: Type.Integer(),
  bytesTotal: Type.Integer(),
  layers: Type.Record(Type.String(), LayerProgress),
  status: Type.Optional(Type.String()),
});

export const PullStatus = Type.Object({
  pullId: Type.String(),
  state: Type.Union([Type.Literal('running'), Type.Literal('completed'), Type.Literal('failed')]),
  progress: Type.Union([Progress, Type.Null()]),
  image: Type.Optional(ImageRef),
  deduped: Type.Optional(Type.Boolean()),
  error: Type.Optional(Type.Object({ type: Type.Optional(Type.String()), message: Type.String() })),
}, { $id: 'Pull', description: "A pull's state and progress (also each `progress` event of its stream)" });

export const Removed = Type.Object({
  id: Uuid,
  refunded: Type.Integer(),
  host: Type.Union([Type.Literal('removed'), Type.Literal('absent'), Type.Literal('kept')]),
});
