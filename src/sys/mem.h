/*
 * Another process's memory: reads and writes through process_vm_readv/writev
 * (one copy, no bounce buffer), falling back to /proc/PID/mem, whose
 * FOLL_FORCE access also reaches pages without read or write permission.
 * And its page map: which pages are present, swapped, or file-backed.
 */
#ifndef ROAM_SYS_MEM_H
#define ROAM_SYS_MEM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

int mem_read(pid_t pid, int memfd, uint64_t addr, void *buf, size_t len);
int mem_write(pid_t pid, int memfd, uint64_t addr, const void *buf, size_t len);

#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)
#define PM_FILE    (1ull << 61)   /* file page or shared anonymous page */
/* Reads the page map entries of npages pages from addr. */
int pagemap_read(int pagemapfd, uint64_t addr, size_t npages, uint64_t *out);

/* 1 if the page (4 KiB) holds only zero bytes. */
int page_is_zero(const void *page);

#endif
