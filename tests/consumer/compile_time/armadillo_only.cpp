// The reference of scripts/compile_time: a program that uses Armadillo alone. Every
// layercache program parses Armadillo's headers, which is most of its compile time; what
// layercache adds on top is measured against this, in the same run.
#include <armadillo>

int main() {
  arma::fmat a(3, 3, arma::fill::randn);
  return arma::accu(a * a) > 0.0f ? 0 : 1;
}
