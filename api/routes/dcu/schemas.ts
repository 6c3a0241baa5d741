/**
 * The DCU routes keep the original service's shapes: snake_case fields inside the
 * envelope {code, status, message, data}; code 0 on success, non-zero on an error
 * (with the HTTP status in `status` and data null).
 */
import { Type, type TSchema } from 'typebox';
import { HOST_ID, USERNAME } from '../../../core/config.js';
import { DCU_STATES } from '../../../core/dcu-state.js';
import { Uuid } from '../../schemas.js';

export function Envelope<T extends TSchema>(data: T, description?: string) {
  return Type.Object(
    {
      code: Type.Integer({ description: '0 on success' }),
      status: Type.Integer({ description: 'The HTTP status' }),
      message: Type.String({ description: 'Simplified Chinese (任务已启动), or English when Accept-Language prefers en' }),
      data,
    },
    description ? { description } : {},
  );
}

export const ErrorEnvelope = Type.Object(
  {
    code: Type.Integer({ description: 'Non-zero: the HTTP status of the error' }),
    status: Type.Integer(),
    message: Type.String({ description: 'Simplified Chinese, or English when Accept-Language prefers en' }),
    data: Type.Null(),
  },
  { $id: 'DcuError', description: 'A DCU error, in the original envelope (application/json)' },
);

export const errorRef = Type.Ref('DcuError');
export const dcuErrors = {
  400: errorRef,
  401: errorRef,
  403: errorRef,
  404: errorRef,
  409: errorRef,
  422: errorRef,
  429: errorRef,
  500: errorRef,
  503: errorRef,
} as const;

export const DcuStateSchema = Type.Union(DCU_STATES.map((s) => Type.Literal(s)));

/** No control characters (a NUL would reach PostgreSQL, which refuses it: a 500 instead of a 400). */
const PRINTABLE = '^[^\\x00-\\x1F\\x7F]*$';

export const StartBody = Type.Object(
  {
    username: Type.String({ maxLength: 64, pattern: USERNAME.source, description: "The caller's username (an admin may name another user)" }),
    docker_image_name: Type.String({
      minLength: 1,
      maxLength: 1024,
      pattern: PRINTABLE,
      description: 'busybox, 127.0.0.1:5000/library/busybox:1.35, repo@sha256:...',
    }),
    host: Type.Optional(Type.String({ maxLength: 63, pattern: HOST_ID.source, description: 'The Docker host to run on; default: the least loaded host that is up' })),
  },
  { additionalProperties: false },
);

export const Started = Envelope(Type.Object({ task_id: Uuid, state: Type.Literal('idle') }));

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

export const Task = Type.Object(
  {
    task_id: Uuid,
    state: DcuStateSchema,
    state_display: Type.String({ description: '等待中, 下载中, 压缩镜像中, 上传中, 已完成, 失败; Idle ... Failed when Accept-Language prefers en' }),
    docker_image_name: Type.String(),
    gzip_file_name: Type.String(),
    minio_object_name: Type.String(),
    progress: Type.Integer({ description: '0 idle, 25 downloading, 50 compressing, 75 uploading, 100 completed, -1 failed' }),
    duration: Type.Integer({ description: 'Milliseconds since start (until the end once ended)' }),
    username: Type.String(),
    start_time: Type.String({ description: 'YYYY-MM-DD HH:mm:ss (UTC), empty before the start' }),
    end_time: Type.String({ description: 'YYYY-MM-DD HH:mm:ss (UTC), empty until the end' }),
    error_message: Type.String(),
    bytes_done: Type.Integer({ description: "Bytes done in the current phase (from the running activity's heartbeat)" }),
    bytes_total: Type.Integer(),
    size_bytes: Nullable(Type.Integer({ description: 'Bytes of the docker save tar' })),
    compressed_bytes: Nullable(Type.Integer({ description: 'Bytes of the .tar.gz' })),
    sha256: Nullable(Type.String({ description: 'sha256 of the .tar.gz, also the object metadata x-amz-meta-sha256' })),
    host: Nullable(Type.String()),
    artifacts_expired: Type.Boolean({ description: 'The cleanup schedule deleted the archive' }),
    charged: Type.Integer({ description: 'Minor units charged: every started GB of tar, once the object is in MinIO (0 before, and for a failed task)' }),
  },
  { $id: 'DcuTask', description: 'A DCU task' },
);
const TaskRef = Type.Ref('DcuTask');

export const TaskEnvelope = Envelope(TaskRef);

export const TaskParams = Type.Object({ task_id: Uuid });

const DIGITS = '^[0-9]{0,9}$';
/** Empty values mean "no filter", as the original's callers send them (`?state=&page=`). */
export const QueryParams = Type.Object({
  docker_image_name: Type.Optional(Type.String({ maxLength: 1024, pattern: PRINTABLE, description: 'Substring of the image name' })),
  username: Type.Optional(Type.String({ maxLength: 64, pattern: PRINTABLE })),
  state: Type.Optional(Type.Union([DcuStateSchema, Type.Literal('')])),
  page: Type.Optional(Type.String({ pattern: DIGITS, description: 'From 1 (default 1)' })),
  page_size: Type.Optional(Type.String({ pattern: DIGITS, description: 'Default 10, capped at 100' })),
});

export const TaskPage = Envelope(Type.Object({ total: Type.Integer(), items: Type.Array(TaskRef) }));

export const CancelRequested = Envelope(
  Type.Object({ task_id: Uuid, state: DcuStateSchema, cancel_requested: Type.Boolean() }),
);

export const Health = Envelope(Type.Object({ status: Type.String(), time: Type.String() }));
