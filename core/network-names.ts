/**
 * Names and labels of the Docker networks Berth gives each user on a host. No imports:
 * the host worker's firewall and the activities share them.
 */
export const LABEL_NETWORK = 'io.berth.network';
/** The value of LABEL_NETWORK on a user's network (the user's id is in io.berth.user-id). */
export const NETWORK_KIND_USER = 'user';

/** Docker's name for a user's network on a host. */
export const userNetworkName = (userId: string) => `berth-user-${userId}`;

/**
 * Every user network's Linux bridge is named with this prefix (`bth` + 12 hex digits, within
 * the kernel's 15 characters), so that one iptables pattern (`bth+`) names them all and
 * nothing else.
 */
export const USER_BRIDGE_PREFIX = 'bth';
