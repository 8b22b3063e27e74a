/* ctl_check.c - aerogramctl check and stats: what a user's mailboxes hold,
 * read through the engine without writing anything. */
#include "host/ctl.h"
#include "host/ctl_cmds.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Orphans younger than this may be appends in flight (their body and
 * summary are written before their log entry). */
#define DEFAULT_GRACE_S 3600
#define PROBLEMS_SHOWN 20

struct problems {
	const char *box;
	unsigned shown;
	uint64_t more;
};

static void on_problem(void *arg, uint32_t uid, const char *what)
{
	struct problems *p = arg;
	if (p->shown < PROBLEMS_SHOWN) {
		printf("  %s: UID %u: %s\n", p->box, (unsigned)uid, what);
		p->shown++;
	} else {
		p->more++;
	}
}

/* A user and their mailboxes (free them with mail_list_free). */
struct user_boxes {
	const char *user;
	struct mail_mailbox_info *infos;
	size_t n;
};

/* The user named by the one argument left after the options (else
 * `usage` is printed: status 2) and their mailboxes, BOX alone when `only`
 * is set (status 1 with the error printed when they cannot be listed).
 * The subcommands here only read: c is marked read-only. */
static int user_mailboxes(struct ctl *c, int argc, char **argv, const char *usage, const char *only,
                          struct user_boxes *ub)
{
	struct mail_mailbox_info **infos = &ub->infos;
	size_t *n = &ub->n;
	if (optind != argc - 1) {
		ctl_error("%s", usage);
		return 2;
	}
	const char *user = ub->user = argv[optind];
	c->read_only = 1;
	char err[1200], why[600];
	if (ctl_user_known(c, user, err, sizeof(err)) != 0) {
		ctl_error("%s", err);
		return 1;
	}
	int rc = mail_list(c->engine, user, infos, n);
	if (rc != 0) {
		ctl_error("%s: cannot list the mailboxes: %s", user, ctl_strerror(c, rc, why, sizeof(why)));
		return 1;
	}
	if (only == NULL)
		return 0;
	char *name = ctl_mailbox_name(only);
	size_t w = 0;
	for (size_t i = 0; i < *n; i++) {
		if (name != NULL && strcmp((*infos)[i].name, name) == 0 && (*infos)[i].exists) {
			struct mail_mailbox_info keep = (*infos)[i];
			(*infos)[i] = (*infos)[0];
			(*infos)[0] = keep;
			w = 1;
			break;
		}
	}
	free(name);
	if (w == 0) {
		ctl_error("%s: no mailbox %s", user, only);
		mail_list_free(*infos, *n);
		return 1;
	}
	/* the others are freed with the list, but not shown */
	for (size_t i = 1; i < *n; i++)
		(*infos)[i].exists = 0;
	return 0;
}

int ctl_cmd_check(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = { { "mailbox", required_argument, NULL, 'm' },
		                              { "grace", required_argument, NULL, 'g' },
		                              { 0, 0, 0, 0 } };
	const char *only = NULL;
	long grace = DEFAULT_GRACE_S;
	const char *usage = "usage: aerogramctl check NAME [--mailbox BOX] [--grace SECONDS]";
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *end;
		switch (o) {
		case 'm': only = optarg; break;
		case 'g':
			grace = strtol(optarg, &end, 10);
			if (*end != '\0' || grace < 0) {
				ctl_error("--grace: a number of seconds");
				return 2;
			}
			break;
		default: ctl_error("%s", usage); return 2;
		}
	}
	struct user_boxes ub;
	int status = user_mailboxes(c, argc, argv, usage, only, &ub);
	if (status != 0)
		return status;
	struct mail_check total = { 0 };
	size_t boxes = 0;
	int failed = 0;
	for (size_t i = 0; i < ub.n; i++) {
		if (!ub.infos[i].exists)
			continue;
		char *shown = ctl_display_name(ub.infos[i].name);
		struct problems pr = { shown ? shown : ub.infos[i].name, 0, 0 };
		struct mail_check r;
		int rc = mail_check_mailbox(c->engine, ub.user, ub.infos[i].name, (uint64_t)grace * 1000, &r, on_problem,
		                            &pr);
		if (rc == AEROGRAM_ENOTFOUND) {
			free(shown);
			continue; /* deleted meanwhile */
		}
		if (rc != 0) {
			char why[600];
			ctl_error("%s: mailbox %s: %s", ub.user, pr.box, ctl_strerror(c, rc, why, sizeof(why)));
			free(shown);
			failed = 1;
			break;
		}
		if (pr.more)
			printf("  %s: %llu more problems\n", pr.box, (unsigned long long)pr.more);
		uint64_t bad = r.missing_summaries + r.bad_summaries + r.missing_bodies;
		printf("%s: %llu messages, %llu bytes; %s", pr.box, (unsigned long long)r.messages,
		       (unsigned long long)r.bytes, bad ? "" : "every message has its summary and body");
		if (bad)
			printf("%llu without summary, %llu with a summary that does not decode, %llu without body",
			       (unsigned long long)r.missing_summaries, (unsigned long long)r.bad_summaries,
			       (unsigned long long)r.missing_bodies);
		printf("; orphans: %llu bodies, %llu summaries", (unsigned long long)r.orphan_bodies,
		       (unsigned long long)r.orphan_summaries);
		if (r.young_bodies || r.young_summaries)
			printf(" (and %llu bodies, %llu summaries younger than %ld s)", (unsigned long long)r.young_bodies,
			       (unsigned long long)r.young_summaries, grace);
		printf("\n");
		total.messages += r.messages;
		total.bytes += r.bytes;
		total.missing_summaries += r.missing_summaries;
		total.bad_summaries += r.bad_summaries;
		total.missing_bodies += r.missing_bodies;
		total.orphan_bodies += r.orphan_bodies;
		total.orphan_summaries += r.orphan_summaries;
		total.young_bodies += r.young_bodies;
		total.young_summaries += r.young_summaries;
		boxes++;
		free(shown);
	}
	mail_list_free(ub.infos, ub.n);
	if (failed)
		return 1;
	uint64_t bad = total.missing_summaries + total.bad_summaries + total.missing_bodies;
	printf("%s %s: %zu mailboxes, %llu messages, %llu with a missing or bad part, %llu orphan bodies, %llu orphan "
	       "summaries\n",
	       bad ? "PROBLEMS" : "ok", ub.user, boxes, (unsigned long long)total.messages, (unsigned long long)bad,
	       (unsigned long long)(total.orphan_bodies + total.young_bodies),
	       (unsigned long long)(total.orphan_summaries + total.young_summaries));
	if (bad)
		ctl_error("%s: %llu messages miss a part (listed above)", ub.user, (unsigned long long)bad);
	return bad ? 1 : 0;
}

int ctl_cmd_stats(struct ctl *c, int argc, char **argv)
{
	static const struct option opts[] = { { 0, 0, 0, 0 } };
	const char *usage = "usage: aerogramctl stats NAME";
	if (getopt_long(argc, argv, "", opts, NULL) != -1) {
		ctl_error("%s", usage);
		return 2;
	}
	struct user_boxes ub;
	int status = user_mailboxes(c, argc, argv, usage, NULL, &ub);
	if (status != 0)
		return status;
	uint64_t t_msgs = 0, t_unseen = 0, t_bytes = 0;
	size_t boxes = 0;
	int rc = 0;
	char why[600];
	printf("%10s %10s %14s  %s\n", "messages", "unseen", "bytes", "mailbox");
	for (size_t i = 0; rc == 0 && i < ub.n; i++) {
		if (!ub.infos[i].exists)
			continue;
		struct mail_mailbox *mb;
		rc = mail_mailbox_open(c->engine, ub.user, ub.infos[i].name, &mb);
		if (rc == AEROGRAM_ENOTFOUND) {
			rc = 0;
			continue;
		}
		struct mail_view *v = NULL;
		struct mail_status st = { 0 };
		if (rc == 0) {
			mail_mailbox_status(mb, &st);
			rc = mail_view_open(mb, 0, &v);
			mail_mailbox_close(mb);
		}
		uint64_t bytes = 0;
		uint32_t count = v ? mail_view_exists(v) : 0;
		enum { CHUNK = 1000 };
		uint32_t uids[CHUNK];
		for (uint32_t at = 0; rc == 0 && at < count; at += CHUNK) {
			uint32_t k = count - at < CHUNK ? count - at : CHUNK;
			for (uint32_t j = 0; j < k; j++)
				uids[j] = mail_view_uid(v, at + j + 1);
			struct mail_summary *s;
			rc = mail_summaries(v, uids, k, &s);
			for (uint32_t j = 0; rc == 0 && j < k; j++)
				if (s[j].status == 0)
					bytes += s[j].size;
			if (rc == 0)
				mail_summaries_free(s, k);
		}
		if (v != NULL)
			mail_view_close(v);
		char *shown = ctl_display_name(ub.infos[i].name);
		if (rc != 0) {
			ctl_error("%s: mailbox %s: %s", ub.user, shown ? shown : ub.infos[i].name,
			          ctl_strerror(c, rc, why, sizeof(why)));
		} else {
			printf("%10u %10u %14llu  %s\n", (unsigned)count, (unsigned)st.unseen, (unsigned long long)bytes,
			       shown ? shown : ub.infos[i].name);
			t_msgs += count;
			t_unseen += st.unseen;
			t_bytes += bytes;
			boxes++;
		}
		free(shown);
	}
	mail_list_free(ub.infos, ub.n);
	if (rc != 0)
		return 1;
	printf("total for %s: %zu mailboxes, %llu messages (%llu unseen), %llu bytes\n", ub.user, boxes,
	       (unsigned long long)t_msgs, (unsigned long long)t_unseen, (unsigned long long)t_bytes);
	return 0;
}
