/*
 * roam keygen FILE: writes a new cluster key, mode 0600, never over an
 * existing file. Copy it to every host (roamd --key FILE).
 */
#include "cli/cli.h"
#include "net/key.h"

int cmd_keygen(int argc, char **argv)
{
	int err;

	if (argc != 2) {
		fprintf(stderr, "usage: roam keygen FILE\n");
		return CLI_EXIT_USAGE;
	}
	if (sodium_init() < 0) {
		cli_error("keygen", "libsodium failed to initialise");
		return CLI_EXIT_FAILURE;
	}
	if ((err = key_generate(argv[1]))) {
		cli_error("keygen", "%s: %s", argv[1], key_strerror(err));
		return CLI_EXIT_FAILURE;
	}
	return 0;
}
