#include "cli/cli.h"

int cmd_inspect(int argc, char **argv)
{
	cli_error("inspect", "not implemented yet");
	return CLI_EXIT_FAILURE;
}
