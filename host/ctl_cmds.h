/* ctl_cmds.h - aerogramctl's subcommands, as the table of aerogramctl.c
 * calls them (see ctl.h for the conventions). */
#ifndef AG_HOST_CTL_CMDS_H
#define AG_HOST_CTL_CMDS_H

struct ctl;

/* ctl_users.c */
int ctl_cmd_hash_password(struct ctl *c, int argc, char **argv);
int ctl_cmd_user_add(struct ctl *c, int argc, char **argv);
int ctl_cmd_user_passwd(struct ctl *c, int argc, char **argv);
int ctl_cmd_user_del(struct ctl *c, int argc, char **argv);
int ctl_cmd_user_list(struct ctl *c, int argc, char **argv);
/* ctl_import.c */
int ctl_cmd_import(struct ctl *c, int argc, char **argv);
int ctl_cmd_export(struct ctl *c, int argc, char **argv);
/* ctl_check.c */
int ctl_cmd_check(struct ctl *c, int argc, char **argv);
int ctl_cmd_stats(struct ctl *c, int argc, char **argv);

#endif
