/*
 * replay - run a libFuzzer target over every file of a corpus directory
 *
 * Built with the normal compiler (and the sanitizers under SANITIZE=1),
 * this is the quick regression run of each fuzz target in make check.
 * It prints one TAP line per corpus (ok when every input returned) and
 * exits 0; a crash is caught by the test runner as a failure.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int
replay_file(const char *path)
{
	struct stat st;
	uint8_t *data;
	ssize_t n;
	size_t got = 0;
	int fd;

	if ((fd = open(path, O_RDONLY)) < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	data = malloc((size_t)st.st_size + 1);
	if (data == NULL)
		return -1;
	while (got < (size_t)st.st_size &&
	    (n = read(fd, data + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	close(fd);
	(void)LLVMFuzzerTestOneInput(data, got);
	free(data);
	return 0;
}

int
main(int argc, char **argv)
{
	struct dirent *de;
	char path[4096];
	DIR *d;
	int count = 0, bad = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: replay CORPUS-DIR\n");
		return 2;
	}
	if ((d = opendir(argv[1])) == NULL) {
		printf("not ok 1 - corpus %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", argv[1], de->d_name);
		if (replay_file(path) < 0)
			bad++;
		count++;
	}
	closedir(d);
	if (count == 0 || bad > 0) {
		printf("not ok 1 - corpus %s: %d inputs, %d unreadable\n",
		    argv[1], count, bad);
		return 1;
	}
	printf("ok 1 - corpus %s: %d inputs replayed\n", argv[1], count);
	return 0;
}
