/* commands.c - the command dispatch table.
 *
 * One row per RFC 3501 command and extension the parser knows. A command
 * whose handler is NULL is parsed but refused with NO: it is not announced
 * either (see capability.c). A command that reads client lines while in
 * flight (IDLE, AUTHENTICATE) names how it takes them in its row. */
#include "host/commands.h"

#include <stddef.h>

#define ANY (AG_STATE_NOT_AUTH | AG_STATE_AUTH | AG_STATE_SELECTED)
#define NOT_AUTH AG_STATE_NOT_AUTH
#define AUTHED (AG_STATE_AUTH | AG_STATE_SELECTED)
#define SELECTED AG_STATE_SELECTED

static const struct ag_command commands[] = {
	{ IMAP_CMD_CAPABILITY, "CAPABILITY", ANY, ag_cmd_capability, NULL },
	{ IMAP_CMD_NOOP, "NOOP", ANY, ag_cmd_noop, NULL },
	{ IMAP_CMD_LOGOUT, "LOGOUT", ANY, ag_cmd_logout, NULL },
	{ IMAP_CMD_ID, "ID", ANY, ag_cmd_id, NULL },
	{ IMAP_CMD_STARTTLS, "STARTTLS", NOT_AUTH, ag_cmd_starttls, NULL },
	{ IMAP_CMD_AUTHENTICATE, "AUTHENTICATE", NOT_AUTH, ag_cmd_authenticate, &ag_cmd_authenticate_input },
	{ IMAP_CMD_LOGIN, "LOGIN", NOT_AUTH, ag_cmd_login, NULL },
	{ IMAP_CMD_ENABLE, "ENABLE", AUTHED, ag_cmd_enable, NULL },
	{ IMAP_CMD_COMPRESS, "COMPRESS", AUTHED, ag_cmd_compress, NULL },
	{ IMAP_CMD_NAMESPACE, "NAMESPACE", AUTHED, ag_cmd_namespace, NULL },
	{ IMAP_CMD_IDLE, "IDLE", AUTHED, ag_cmd_idle, &ag_cmd_idle_input },
	{ IMAP_CMD_SELECT, "SELECT", AUTHED, ag_cmd_select, NULL },
	{ IMAP_CMD_EXAMINE, "EXAMINE", AUTHED, ag_cmd_select, NULL },
	{ IMAP_CMD_CREATE, "CREATE", AUTHED, ag_cmd_create, NULL },
	{ IMAP_CMD_DELETE, "DELETE", AUTHED, ag_cmd_delete, NULL },
	{ IMAP_CMD_RENAME, "RENAME", AUTHED, ag_cmd_rename, NULL },
	{ IMAP_CMD_SUBSCRIBE, "SUBSCRIBE", AUTHED, ag_cmd_subscribe, NULL },
	{ IMAP_CMD_UNSUBSCRIBE, "UNSUBSCRIBE", AUTHED, ag_cmd_subscribe, NULL },
	{ IMAP_CMD_LIST, "LIST", AUTHED, ag_cmd_list, NULL },
	{ IMAP_CMD_LSUB, "LSUB", AUTHED, ag_cmd_list, NULL },
	{ IMAP_CMD_STATUS, "STATUS", AUTHED, ag_cmd_status, NULL },
	{ IMAP_CMD_APPEND, "APPEND", AUTHED, ag_cmd_append, NULL },
	{ IMAP_CMD_GETQUOTA, "GETQUOTA", AUTHED, ag_cmd_getquota, NULL },
	{ IMAP_CMD_GETQUOTAROOT, "GETQUOTAROOT", AUTHED, ag_cmd_getquotaroot, NULL },
	{ IMAP_CMD_SETQUOTA, "SETQUOTA", AUTHED, ag_cmd_setquota, NULL },
	{ IMAP_CMD_CHECK, "CHECK", SELECTED, ag_cmd_check, NULL },
	{ IMAP_CMD_CLOSE, "CLOSE", SELECTED, ag_cmd_close, NULL },
	{ IMAP_CMD_UNSELECT, "UNSELECT", SELECTED, ag_cmd_close, NULL },
	{ IMAP_CMD_EXPUNGE, "EXPUNGE", SELECTED, ag_cmd_expunge, NULL },
	{ IMAP_CMD_SEARCH, "SEARCH", SELECTED, ag_cmd_search, NULL },
	{ IMAP_CMD_SORT, "SORT", SELECTED, ag_cmd_sort, NULL },
	{ IMAP_CMD_THREAD, "THREAD", SELECTED, ag_cmd_thread, NULL },
	{ IMAP_CMD_CANCELUPDATE, "CANCELUPDATE", SELECTED, ag_cmd_cancelupdate, NULL },
	{ IMAP_CMD_FETCH, "FETCH", SELECTED, ag_cmd_fetch, NULL },
	{ IMAP_CMD_STORE, "STORE", SELECTED, ag_cmd_store, NULL },
	{ IMAP_CMD_COPY, "COPY", SELECTED, ag_cmd_copy, NULL },
	{ IMAP_CMD_MOVE, "MOVE", SELECTED, ag_cmd_copy, NULL },
};

const struct ag_command *ag_command_find(enum imap_cmd_kind kind)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (commands[i].kind == kind)
			return &commands[i];
	}
	return NULL;
}
