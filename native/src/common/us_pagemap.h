/* PAGEMAP_SCAN (Linux 6.7) and asynchronous userfaultfd write-protect: the
 * installed kernel headers (6.1) predate them, so the ABI is spelled out here. */
#ifndef US_PAGEMAP_H
#define US_PAGEMAP_H
#include <stdint.h>
#include <linux/ioctl.h>

struct us_page_region {
	uint64_t start, end;
	uint64_t categories;
};

struct us_pm_scan_arg {
	uint64_t size;
	uint64_t flags;
	uint64_t start, end;
	uint64_t walk_end;
	uint64_t vec, vec_len;
	uint64_t max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};

#define US_PAGEMAP_SCAN _IOWR('f', 16, struct us_pm_scan_arg)
#define US_PM_SCAN_WP_MATCHING (1ull << 0)   /* write-protect the written pages among those reported */
#define US_PM_SCAN_CHECK_WPASYNC (1ull << 1) /* fail (EPERM) on a mapping not in asynchronous write-protect mode */
#define US_PAGE_IS_WPALLOWED (1ull << 0)
#define US_PAGE_IS_WRITTEN   (1ull << 1)
#define US_PAGE_IS_FILE      (1ull << 2)
#define US_PAGE_IS_PRESENT   (1ull << 3)
#define US_PAGE_IS_SWAPPED   (1ull << 4)
#define US_PAGE_IS_PFNZERO   (1ull << 5)

#define US_UFFD_FEATURE_WP_UNPOPULATED (1ull << 13)
#define US_UFFD_FEATURE_WP_ASYNC       (1ull << 15)
#define US_UFFD_USER_MODE_ONLY 1
#endif
