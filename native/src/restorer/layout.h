/* Where the restorer lives. It is linked at RESTORER_BASE and keeps everything it
 * uses inside [RESTORER_BASE, RESTORER_END), an area applications do not map, so
 * it can replace the rest of the address space from under itself. */
#ifndef US_RESTORER_LAYOUT_H
#define US_RESTORER_LAYOUT_H
#define RESTORER_BASE    0x200000000000ull
#define RESTORER_END     0x200040000000ull      /* 1 GiB */
#define RESTORER_SCRATCH 0x200010000000ull      /* state description and buffers */
#endif
