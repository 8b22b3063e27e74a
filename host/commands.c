/* commands.c - the command dispatch table.
 *
 * One row per RFC 3501 command and extension the parser knows. A command
 * whose handler is NULL is parsed but refused with NO: it is not announced
 * either (see capability.c). */
#include "host/commands.h"

#include <stddef.h>

#define ANY (AG_STATE_NOT_AUTH | AG_STATE_AUTH | AG_STATE_SELECTED)
#define NOT_AUTH AG_STATE_NOT_AUTH
#define AUTHED (AG_STATE_AUTH | AG_STATE_SELECTED)
#define SELECTED AG_STATE_SELECTED

static const struct ag_command commands[] = {
	{ IMAP_CMD_CAPABILITY, "CAPABILITY", ANY, ag_cmd_capability },
	{ IMAP_CMD_NOOP, "NOOP", ANY, ag_cmd_noop },
	{ IMAP_CMD_LOGOUT, "LOGOUT", ANY, ag_cmd_logout },
	{ IMAP_CMD_ID, "ID", ANY, ag_cmd_id },
	{ IMAP_CMD_STARTTLS, "STARTTLS", NOT_AUTH, ag_cmd_starttls },
	{ IMAP_CMD_AUTHENTICATE, "AUTHENTICATE", NOT_AUTH, ag_cmd_authenticate },
	{ IMAP_CMD_LOGIN, "LOGIN", NOT_AUTH, ag_cmd_login },
	{ IMAP_CMD_ENABLE, "ENABLE", AUTHED, ag_cmd_enable },
	{ IMAP_CMD_COMPRESS, "COMPRESS", AUTHED, ag_cmd_compress },
	{ IMAP_CMD_NAMESPACE, "NAMESPACE", AUTHED, ag_cmd_namespace },
	{ IMAP_CMD_IDLE, "IDLE", AUTHED, ag_cmd_idle },
	{ IMAP_CMD_SELECT, "SELECT", AUTHED, ag_cmd_select },
	{ IMAP_CMD_EXAMINE, "EXAMINE", AUTHED, ag_cmd_select },
	{ IMAP_CMD_CREATE, "CREATE", AUTHED, ag_cmd_create },
	{ IMAP_CMD_DELETE, "DELETE", AUTHED, ag_cmd_delete },
	{ IMAP_CMD_RENAME, "RENAME", AUTHED, ag_cmd_rename },
	{ IMAP_CMD_SUBSCRIBE, "SUBSCRIBE", AUTHED, ag_cmd_subscribe },
	{ IMAP_CMD_UNSUBSCRIBE, "UNSUBSCRIBE", AUTHED, ag_cmd_subscribe },
	{ IMAP_CMD_LIST, "LIST", AUTHED, ag_cmd_list },
	{ IMAP_CMD_LSUB, "LSUB", AUTHED, ag_cmd_list },
	{ IMAP_CMD_STATUS, "STATUS", AUTHED, ag_cmd_status },
	{ IMAP_CMD_APPEND, "APPEND", AUTHED, ag_cmd_append },
	{ IMAP_CMD_GETQUOTA, "GETQUOTA", AUTHED, ag_cmd_getquota },
	{ IMAP_CMD_GETQUOTAROOT, "GETQUOTAROOT", AUTHED, ag_cmd_getquotaroot },
	{ IMAP_CMD_SETQUOTA, "SETQUOTA", AUTHED, ag_cmd_setquota },
	{ IMAP_CMD_CHECK, "CHECK", SELECTED, ag_cmd_check },
	{ IMAP_CMD_CLOSE, "CLOSE", SELECTED, ag_cmd_close },
	{ IMAP_CMD_UNSELECT, "UNSELECT", SELECTED, ag_cmd_close },
	{ IMAP_CMD_EXPUNGE, "EXPUNGE", SELECTED, ag_cmd_expunge },
	{ IMAP_CMD_SEARCH, "SEARCH", SELECTED, ag_cmd_search },
	{ IMAP_CMD_SORT, "SORT", SELECTED, ag_cmd_sort },
	{ IMAP_CMD_THREAD, "THREAD", SELECTED, ag_cmd_thread },
	{ IMAP_CMD_CANCELUPDATE, "CANCELUPDATE", SELECTED, ag_cmd_cancelupdate },
	{ IMAP_CMD_FETCH, "FETCH", SELECTED, ag_cmd_fetch },
	{ IMAP_CMD_STORE, "STORE", SELECTED, ag_cmd_store },
	{ IMAP_CMD_COPY, "COPY", SELECTED, ag_cmd_copy },
	{ IMAP_CMD_MOVE, "MOVE", SELECTED, ag_cmd_copy },
};

const struct ag_command *ag_command_find(enum imap_cmd_kind kind)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (commands[i].kind == kind)
			return &commands[i];
	}
	return NULL;
}
