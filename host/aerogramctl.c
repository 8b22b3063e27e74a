/* aerogramctl.c - the administration tool: a table of subcommands, each a
 * function (ctl.h) with what it needs opened and its help.
 *
 *   aerogramctl [-c FILE] SUBCOMMAND [ARGS...]
 *
 * The framework reads -c (before the subcommand or among its arguments),
 * answers --help from the table, opens the configuration (and the driver,
 * store and engine for subcommands on mail) as aerogramd does, runs the
 * function and closes everything. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "host/ctl.h"
#include "host/ctl_cmds.h"
#include "host/ctl_store.h"

enum needs {
	NEEDS_NOTHING, /* hash-password, version */
	NEEDS_CONFIG,  /* the configuration file (users-file subcommands) */
	NEEDS_STORE,   /* configuration, driver, store and engine */
};

struct subcommand {
	const char *name;  /* one or two words: "user add" */
	int (*run)(struct ctl *c, int argc, char **argv);
	enum needs needs;
	const char *args;  /* after the name, for the usage line */
	const char *help;  /* one line */
	const char *more;  /* `SUB --help`: options and details, or NULL */
};

static int cmd_version(struct ctl *c, int argc, char **argv)
{
	(void)c;
	(void)argv;
	if (argc > 1) {
		ctl_error("version takes no argument");
		return 2;
	}
	printf("aerogramctl %s (driver ABI %d.%d)\n", AEROGRAM_VERSION, AEROGRAM_ABI_MAJOR, AEROGRAM_ABI_MINOR);
	return 0;
}

static int cmd_help(struct ctl *c, int argc, char **argv);

/* Users-file changes reach running daemons on SIGHUP. */
#define RELOAD "Running daemons read the users file again on SIGHUP (systemctl reload aerogramd).\n"

static const struct subcommand subcommands[] = {
	{ "user add", ctl_cmd_user_add, NEEDS_CONFIG, "NAME [--password-file FILE]",
	  "add a user to the users file, with an Argon2id hash of a new password",
	  "The password is asked twice on a terminal (echo off), else read from the first line of\n"
	  "standard input, or of FILE with --password-file. The users file ([auth] users_file) is\n"
	  "rewritten atomically with its mode and owner; a missing one is created (mode 0600).\n"
	  "A name is letters, digits and . _ - + @; a name that differs from an existing one only\n"
	  "in case is refused.\n" RELOAD },
	{ "user passwd", ctl_cmd_user_passwd, NEEDS_CONFIG, "NAME [--password-file FILE]",
	  "set a user's password (read as for user add)",
	  "Only the password line of the user's section changes.\n" RELOAD },
	{ "user del", ctl_cmd_user_del, NEEDS_CONFIG, "NAME [--purge]",
	  "remove a user from the users file (with --purge, and every mailbox of theirs)",
	  "Without --purge the mail stays in the store: adding the name again finds it.\n"
	  "--purge first deletes every mailbox of the user through the mail engine (INBOX, which\n"
	  "cannot be deleted, is emptied), then removes the user; if the store fails, the user is\n"
	  "kept and the command can be run again.\n" RELOAD },
	{ "user list", ctl_cmd_user_list, NEEDS_CONFIG, "", "list the users of the users file, one per line", NULL },
	{ "import", ctl_cmd_import, NEEDS_STORE, "NAME [--mailbox BOX] [--batch N] [--keep-from-quoting] PATH",
	  "import an mbox file, a Maildir or a directory tree of either into a user's mailboxes",
	  "PATH is an mbox file (into BOX, default INBOX), a Maildir (into BOX, default INBOX; its\n"
	  "Maildir++ folders .A.B into A.B, below BOX when --mailbox is given) or a directory of\n"
	  "mbox files and Maildirs (each into the mailbox of its path, below BOX if given).\n"
	  "Messages are stored as an IMAP APPEND stores them (line ends made CRLF), BATCH at a time\n"
	  "(default 100) in one log entry each. Flags come from Maildir names (:2,DFPRST) or mbox\n"
	  "Status/X-Status/X-Keywords headers; internal dates from the From_ line or the file's\n"
	  "mtime. mbox \">From \" lines lose one '>' (mboxrd) unless --keep-from-quoting.\n"
	  "A progress bar on a terminal, a line per mailbox. Interrupted (Ctrl-C, exit status\n"
	  "130) or failed, the same command goes on where it stopped: a message whose Message-ID\n"
	  "and size (or, without Message-ID, whose SHA-256) the mailbox holds already is skipped.\n" },
	{ "export", ctl_cmd_export, NEEDS_STORE, "NAME BOX FILE.mbox [--flags] [--force]",
	  "write a mailbox to an mbox file (mboxrd; FILE - is standard output)",
	  "Each message gets a From_ line (Return-Path or From address, internal date in UTC),\n"
	  "LF line ends and \">From \" quoting (mboxrd); --flags adds Status, X-Status and\n"
	  "X-Keywords headers (import reads them back). An existing FILE is replaced only with\n"
	  "--force; the file is written beside it and renamed when complete.\n" },
	{ "check", ctl_cmd_check, NEEDS_STORE, "NAME [--mailbox BOX] [--grace SECONDS]",
	  "check that every message of a user has its summary and body; count orphans",
	  "Replays each mailbox's log, reads its summaries and lists its bodies, and writes\n"
	  "nothing. Orphans (bodies and summaries no message refers to: expunged messages not\n"
	  "collected yet, failed appends) are counted; those younger than --grace (3600 s) may be\n"
	  "appends in flight and are counted apart. Exit status 1 when a message misses a part.\n" },
	{ "stats", ctl_cmd_stats, NEEDS_STORE, "NAME", "mailboxes, messages, unseen messages and bytes of a user", NULL },
	{ "undelete", ctl_cmd_undelete, NEEDS_STORE, "NAME BOX [--since TIME]",
	  "bring back expunged messages whose contents the store still keeps",
	  "Expunged messages stay in the store for [storage] expunge_retention (7 days by\n"
	  "default) before they are collected; undelete appends those of BOX expunged since\n"
	  "TIME (an ISO 8601 date or date-time, or a duration ago: 30m, 2h, 7d, 1w; default:\n"
	  "all) again, with new UIDs, their flags (but \\Deleted) and internal dates. A message is\n"
	  "never brought back twice.\n" },
	{ "copy-store", ctl_cmd_copy_store, NEEDS_STORE, "--to OTHER.conf [--user NAME]",
	  "copy every user's mailboxes into the store of another configuration",
	  "Copies mailboxes, messages, flags, internal dates, subscriptions and special-use\n"
	  "attributes of every user of the users file (or of --user NAME) into the store that\n"
	  "OTHER.conf names, whatever its driver (e.g. sqlite to garage). Resumable: run it\n"
	  "again after an interruption and what is already there (same size, date and header\n"
	  "block) is not copied again. Each mailbox is verified by count and bytes at the end.\n"
	  "UIDs may differ in the new store.\n" },
	{ "hash-password", ctl_cmd_hash_password, NEEDS_NOTHING, "",
	  "print the Argon2id PHC string of the password on standard input",
	  "Parameters m=65536 (KiB), t=3, p=1, a 16-byte random salt (user add uses the same).\n" },
	{ "version", cmd_version, NEEDS_NOTHING, "", "print the version", NULL },
	{ "help", cmd_help, NEEDS_NOTHING, "[SUBCOMMAND]", "this list, or one subcommand's help", NULL },
};
#define N_SUBCOMMANDS (sizeof(subcommands) / sizeof(subcommands[0]))

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: aerogramctl [-c FILE] SUBCOMMAND [ARGS...]\n"
	        "  -c FILE   configuration file (default %s)\n\n"
	        "subcommands:\n",
	        AG_DEFAULT_CONFIG);
	for (size_t i = 0; i < N_SUBCOMMANDS; i++)
		fprintf(out, "  %-14s %s\n", subcommands[i].name, subcommands[i].help);
	fprintf(out, "\n'aerogramctl SUBCOMMAND --help' describes one; see also aerogramctl(8).\n");
}

static void sub_help(const struct subcommand *s, FILE *out)
{
	fprintf(out, "usage: aerogramctl [-c FILE] %s%s%s\n%s.\n", s->name, s->args[0] ? " " : "", s->args, s->help);
	if (s->more != NULL)
		fprintf(out, "\n%s", s->more);
}

/* The subcommand named by argv[0] (and argv[1] for two words); *words
 * says how many it took. */
static const struct subcommand *lookup(int argc, char **argv, int *words)
{
	for (size_t i = 0; i < N_SUBCOMMANDS; i++) {
		const char *name = subcommands[i].name;
		const char *sp = strchr(name, ' ');
		if (sp == NULL && strcmp(argv[0], name) == 0) {
			*words = 1;
			return &subcommands[i];
		}
		if (sp != NULL && argc >= 2 && strlen(argv[0]) == (size_t)(sp - name) &&
		    strncmp(argv[0], name, (size_t)(sp - name)) == 0 && strcmp(argv[1], sp + 1) == 0) {
			*words = 2;
			return &subcommands[i];
		}
	}
	return NULL;
}

/* A group word alone ("user"): its subcommands. */
static int group_usage(const char *word)
{
	size_t len = strlen(word);
	int found = 0;
	for (size_t i = 0; i < N_SUBCOMMANDS; i++) {
		const char *name = subcommands[i].name;
		if (strncmp(name, word, len) == 0 && name[len] == ' ') {
			if (!found)
				fprintf(stderr, "aerogramctl: %s needs a subcommand:\n", word);
			fprintf(stderr, "  aerogramctl %s %s\n", name, subcommands[i].args);
			found = 1;
		}
	}
	return found;
}

static int cmd_help(struct ctl *c, int argc, char **argv)
{
	(void)c;
	if (argc == 1) {
		usage(stdout);
		return 0;
	}
	int words;
	const struct subcommand *s = lookup(argc - 1, argv + 1, &words);
	if (s == NULL) {
		if (!group_usage(argv[1]))
			ctl_error("no subcommand %s (aerogramctl --help lists them)", argv[1]);
		return 2;
	}
	sub_help(s, stdout);
	return 0;
}

int main(int argc, char **argv)
{
	const char *config_path = AG_DEFAULT_CONFIG;
	int i = 1;
	/* Options before the subcommand. */
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
			if (i + 1 >= argc) {
				ctl_error("%s needs a file", argv[i]);
				return 2;
			}
			config_path = argv[++i];
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			config_path = argv[i] + 9;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0) {
			return cmd_version(NULL, 1, argv);
		} else {
			ctl_error("unknown option %s (aerogramctl --help lists the options)", argv[i]);
			return 2;
		}
	}
	if (i == argc) {
		usage(stderr);
		return 2;
	}
	int words;
	const struct subcommand *s = lookup(argc - i, argv + i, &words);
	if (s == NULL) {
		if (!group_usage(argv[i]))
			ctl_error("no subcommand %s (aerogramctl --help lists them)", argv[i]);
		return 2;
	}
	/* The subcommand's arguments, with -c FILE taken out and --help
	 * answered here; argv[0] is its name. */
	char **sub = calloc((size_t)argc + 1, sizeof(char *));
	if (sub == NULL)
		return 1;
	int n = 0;
	sub[n++] = (char *)s->name;
	int dashdash = 0;
	for (int k = i + words; k < argc; k++) {
		const char *a = argv[k];
		if (!dashdash && strcmp(a, "--") == 0) {
			dashdash = 1;
		} else if (!dashdash && (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0)) {
			if (k + 1 >= argc) {
				ctl_error("%s needs a file", a);
				free(sub);
				return 2;
			}
			config_path = argv[++k];
			continue;
		} else if (!dashdash && strncmp(a, "--config=", 9) == 0) {
			config_path = a + 9;
			continue;
		} else if (!dashdash && s->run != cmd_help && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
			sub_help(s, stdout);
			free(sub);
			return 0;
		}
		sub[n++] = argv[k];
	}
	sub[n] = NULL;

	struct ctl c;
	memset(&c, 0, sizeof(c));
	char err[1200];
	int rc = 0;
	if (s->needs == NEEDS_CONFIG)
		rc = ctl_open_config(&c, config_path, err, sizeof(err));
	else if (s->needs == NEEDS_STORE)
		rc = ctl_open(&c, config_path, err, sizeof(err));
	if (rc != 0) {
		ctl_error("%s", err);
		free(sub);
		return 1;
	}
	optind = 0; /* glibc: a full re-initialisation for the subcommand's getopt_long */
	opterr = 0; /* subcommands print their own one-line usage */
	rc = s->run(&c, n, sub);
	fflush(stdout);
	ctl_close(&c);
	free(sub);
	return rc;
}
