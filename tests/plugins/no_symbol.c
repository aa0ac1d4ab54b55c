/* A library that exports no entry symbol at all. */
int outpost_not_the_entry(void) { return 42; }
