/* privileges.c - switching to [imap] user (privileges.h).
 *
 * Linux keeps capabilities across setuid() only with PR_SET_KEEPCAPS, and
 * then only in the permitted set: the effective set is restored with
 * capset() afterwards. libcap is not needed for two capset calls. Threads
 * inherit the capabilities of the thread that creates them: the daemon
 * binds every socket (ag_server_init) before it starts a thread, and gives
 * the capability up right after. */
#include "host/privileges.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "host/log.h"

static int switched;

static int set_caps(uint32_t mask)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof(data));
	data[0].effective = data[0].permitted = mask;
	return (int)syscall(SYS_capset, &hdr, data);
}

int ag_privileges_drop(const struct ag_config *cfg, char *err, size_t errlen)
{
	char at[1024];
	if (cfg->user == NULL)
		return 0;
	ag_config_where(cfg, cfg->lines.user, at, sizeof(at));
	errno = 0;
	struct passwd *pw = getpwnam(cfg->user);
	if (pw == NULL) {
		snprintf(err, errlen, "%s: [imap] user: no user '%s' on this system", at, cfg->user);
		return -1;
	}
	uid_t me = geteuid();
	if (pw->pw_uid == me)
		return 0; /* already that user */
	if (me != 0) {
		snprintf(err, errlen,
		         "%s: [imap] user = %s: only root can switch to another user (aerogramd runs as uid %u; "
		         "remove the key, or start it as root)",
		         at, cfg->user, (unsigned)me);
		return -1;
	}
	if (prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L) != 0 || initgroups(pw->pw_name, pw->pw_gid) != 0 ||
	    setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
		snprintf(err, errlen, "%s: [imap] user = %s: cannot switch to it: %s", at, cfg->user, strerror(errno));
		return -1;
	}
	/* setuid() worked: no way back to root (the saved uid is gone too). */
	if (setuid(0) == 0) {
		snprintf(err, errlen, "%s: [imap] user = %s: root privileges could be regained; refusing to run", at,
		         cfg->user);
		return -1;
	}
	if (set_caps(1u << CAP_NET_BIND_SERVICE) != 0) {
		snprintf(err, errlen, "%s: [imap] user = %s: cannot keep the capability to bind ports below 1024: %s", at,
		         cfg->user, strerror(errno));
		return -1;
	}
	prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L);
	switched = 1;
	ag_log_info("running as user %s (uid %u, gid %u)", pw->pw_name, (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
	return 0;
}

void ag_privileges_bound(void)
{
	if (switched && set_caps(0) != 0)
		ag_log_warn("cannot give up CAP_NET_BIND_SERVICE: %s", strerror(errno));
}
