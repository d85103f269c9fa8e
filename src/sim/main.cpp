// astro-api-sim: a local, stateful implementation of the Astro API operations
// astro-tokend uses (product.md §8).
#include <iostream>

int main() {
  std::cerr << "astro-api-sim: not available in this build\n";
  return 1;
}
