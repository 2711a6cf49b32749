#include "cli/cli.h"

int cmd_checkpoint(int argc, char **argv)
{
	cli_error("checkpoint", "not implemented yet");
	return CLI_EXIT_FAILURE;
}
