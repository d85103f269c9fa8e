// sim/ — astro-api-sim: a local, stateful implementation of the Astro API
// operations astro-tokend uses, faithful to shared/astro-openapi/ (product.md §8).
// Used by tests, benchmarks and the demo; never by the daemon itself.
#pragma once
