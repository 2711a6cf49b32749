/*
 * roam: the command-line tool. One file per subcommand; each exports one
 * entry point taking the arguments after the subcommand's name (argv[0] is
 * the subcommand) and returning the process exit status.
 *
 * Exit statuses: the job's own status where there is a job (128+signal when
 * it was killed, as a shell reports it); 255 for roam's own failures (as ssh
 * does); 2 for a usage error.
 */
#ifndef ROAM_CLI_H
#define ROAM_CLI_H

#define CLI_EXIT_USAGE 2
#define CLI_EXIT_FAILURE 255

struct cli_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

/* Prints "roam SUBCOMMAND: message" to stderr. */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* cmd_checkpoint.c */
int cmd_checkpoint(int argc, char **argv);
/* cmd_restore.c */
int cmd_restore(int argc, char **argv);
/* cmd_inspect.c */
int cmd_inspect(int argc, char **argv);

/* Commands of the cluster (roamd clients) are declared below this line. */
/* cmd_run.c */
int cmd_run(int argc, char **argv);
/* cmd_attach.c */
int cmd_attach(int argc, char **argv);
/* cmd_wait.c */
int cmd_wait(int argc, char **argv);
/* cmd_ps.c */
int cmd_ps(int argc, char **argv);
/* cmd_hosts.c */
int cmd_hosts(int argc, char **argv);
/* cmd_kill.c */
int cmd_kill(int argc, char **argv);
/* cmd_migrate.c */
int cmd_migrate(int argc, char **argv);
int cmd_drain(int argc, char **argv);
int cmd_undrain(int argc, char **argv);
/* cmd_keygen.c */
int cmd_keygen(int argc, char **argv);

#endif
