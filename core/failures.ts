/**
 * Failure types carried by Temporal ApplicationFailures: activities raise them,
 * workflows pass them on, the API maps them to HTTP. No imports, so workflows may use it.
 */
export const FailureType = {
  InvalidReference: 'InvalidReference',
  ImageNotFound: 'ImageNotFound',
  RegistryUnauthorized: 'RegistryUnauthorized',
  InsufficientFunds: 'InsufficientFunds',
  ImageInUse: 'ImageInUse',
  HostUnavailable: 'HostUnavailable',
  /** What answered at the registry's address is not a registry, or it never answered. */
  RegistryError: 'RegistryError',
} as const;
export type FailureType = (typeof FailureType)[keyof typeof FailureType];

/** Retrying these cannot help. */
export const NON_RETRYABLE: string[] = [
  FailureType.InvalidReference,
  FailureType.ImageNotFound,
  FailureType.RegistryUnauthorized,
  FailureType.InsufficientFunds,
  FailureType.ImageInUse,
  FailureType.RegistryError,
];
