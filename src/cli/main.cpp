#include <cstdio>

int main() {
  std::puts("tempo: under construction");
  return 0;
}
