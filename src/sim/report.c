/*
 * Reports: the human table, RFC 4180 CSV, and gnuplot plots.
 *
 * The CSV holds only what the seed determines, so two runs with the same
 * seed give byte-identical files; the speed goes to the table only, as
 * millions of events per CPU second (on a shared machine the wall clock
 * measures the neighbours too).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "sim/sim.h"

/* A field, quoted as RFC 4180 asks when it holds a comma, quote or newline. */
static void csv_field(FILE *f, const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

void report_csv_header(FILE *f)
{
	fputs("policy,hosts,load,mean,p99,ci95,median,slowdown,transferred,migrated,"
	      "probes_per_proc,msgs_per_proc,utilisation,jobs,reps,seed\r\n", f);
}

void report_csv_row(FILE *f, const struct sim_row *r)
{
	csv_field(f, r->policy);
	fprintf(f, ",%u,%.4g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%llu,%u,%llu\r\n",
	        r->hosts, r->load, r->mean, r->p99, r->ci95, r->median, r->slowdown,
	        r->transferred, r->migrated, r->probes, r->messages, r->utilisation,
	        (unsigned long long)r->jobs, r->reps, (unsigned long long)r->seed);
}

void report_table_header(FILE *f)
{
	fprintf(f, "%-22s %6s %5s %9s %9s %9s %8s %9s %6s %6s %7s %7s %5s %8s\n",
	        "policy", "hosts", "load", "mean", "median", "p99", "ci95", "slowdown",
	        "xfer%", "migr%", "probes", "msgs", "util", "Mev/s");
}

void report_table_row(FILE *f, const struct sim_row *r)
{
	fprintf(f, "%-22s %6u %5.3g %9.4f %9.4f %9.3f %8.4f %9.3f %6.2f %6.2f %7.3f %7.3f %5.3f %8.2f\n",
	        r->policy, r->hosts, r->load, r->mean, r->median, r->p99, r->ci95, r->slowdown,
	        100 * r->transferred, 100 * r->migrated, r->probes, r->messages, r->utilisation,
	        r->cpu_seconds > 0 ? (double)r->events / r->cpu_seconds / 1e6 : 0.0);
}

/*
 * gnuplot reads the rows as inline data blocks, one per policy; the script
 * goes through a pipe, so nothing but the two images is written.
 */
static int plot_one(const char *prefix, const char *title, const struct sim_row *rows,
                    size_t n, const char *term, const char *ext)
{
	char names[64][POLICY_SPEC_MAX];
	size_t npol = 0;
	FILE *gp = popen("gnuplot", "w");
	int status;

	if (!gp)
		return -1;
	for (size_t i = 0; i < n; i++) {
		size_t k;

		for (k = 0; k < npol && strcmp(names[k], rows[i].policy); k++)
			;
		if (k == npol && npol < 64)
			strcpy(names[npol++], rows[i].policy);
	}
	fprintf(gp, "set terminal %s\nset output '%s.%s'\n", term, prefix, ext);
	fprintf(gp, "set multiplot layout 1,2 title \"%s\"\n", title);
	fprintf(gp, "set key top left\nset grid\nset logscale y\nset xlabel 'load'\n");
	for (int panel = 0; panel < 2; panel++) {
		fprintf(gp, "set ylabel '%s time in system (mean work = 1)'\n",
		        panel ? "p99" : "mean");
		fprintf(gp, "plot ");
		for (size_t k = 0; k < npol; k++)
			fprintf(gp, "%s'-' using 1:2 with linespoints title \"%s\"",
			        k ? ", " : "", names[k]);
		fputc('\n', gp);
		for (size_t k = 0; k < npol; k++) {
			for (size_t i = 0; i < n; i++)
				if (strcmp(rows[i].policy, names[k]) == 0)
					fprintf(gp, "%g %g\n", rows[i].load,
					        panel ? rows[i].p99 : rows[i].mean);
			fprintf(gp, "e\n");
		}
	}
	fprintf(gp, "unset multiplot\n");
	status = pclose(gp);
	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		errno = EIO;
		return -1;
	}
	return 0;
}

int report_plot(const char *prefix, const char *title, const struct sim_row *rows, size_t n)
{
	if (plot_one(prefix, title, rows, n, "pngcairo size 1400,560 font ',10'", "png") < 0 &&
	    plot_one(prefix, title, rows, n, "png size 1400,560", "png") < 0)
		return -1;
	return plot_one(prefix, title, rows, n, "svg size 1400,560 dynamic", "svg");
}
