#include "cli/cli.h"

int cmd_restore(int argc, char **argv)
{
	cli_error("restore", "not implemented yet");
	return CLI_EXIT_FAILURE;
}
