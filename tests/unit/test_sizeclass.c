/* Size classes and bins: the only tables that know class boundaries. */
#include "internal.h"
#include "testhelper.h"

TEST(every_small_size_gets_the_smallest_fitting_class) {
  for (size_t s = 0; s <= LW_SMALL_MAX; s++) {
    unsigned c = lw_size_class(s);
    ASSERT(c < LW_NSMALL); /* the classes after them are for aligned requests */
    EXPECT(_lw_class_size[c] >= s);
#if !LW_CHECKED
    if (c > 0) EXPECT(_lw_class_size[c - 1] < s);
#endif
  }
}

TEST(classes_keep_16_byte_alignment_from_16_bytes) {
  for (unsigned c = 0; c < LW_NCLASSES; c++) {
    uint32_t sz = _lw_class_size[c];
    EXPECT(sz == 8 || sz % 16 == 0);
    if (c) EXPECT(sz > _lw_class_size[c - 1]);
    EXPECT(LW_PAGE_SIZE / sz >= (c < LW_NSMALL ? 16 : 8));
  }
  EXPECT_EQ_U(_lw_class_size[LW_NSMALL - 1], LW_SMALL_MAX);
  EXPECT_EQ_U(_lw_class_size[LW_NCLASSES - 1], LW_CLASS_MAX);
}

TEST(class_spacing_wastes_under_16_bytes_or_an_eighth) {
  for (size_t s = 1; s <= LW_SMALL_MAX; s++) {
    size_t slot = _lw_class_size[lw_size_class(s)];
    if (s <= 256)
      EXPECT(slot - s < 16);
    else
      EXPECT((slot - s) * 8 <= slot);
  }
}

TEST(bins_are_monotonic_with_eight_per_doubling) {
  unsigned prev = 0;
  for (size_t s = 16; s < ((size_t)1 << 24); s += 16) {
    unsigned b = _lw_bin_of(s);
    EXPECT(b >= prev);
    EXPECT(b < LW_NBINS);
    prev = b;
  }
  EXPECT_EQ_U(_lw_bin_of(128), 8);
  EXPECT_EQ_U(_lw_bin_of(256), 16);
  EXPECT_EQ_U(_lw_bin_of(255), 15);
  EXPECT_EQ_U(_lw_bin_of((size_t)1 << 40), LW_NBINS - 1);
}

TEST_MAIN()
