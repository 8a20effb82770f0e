// Identity: all of its behaviour is PassThroughLayer's.
#include "layercache/layers/identity.hpp"

namespace layercache {

// Compiled here once for float and double; the header declares it extern.
template class LayerImpl<Identity>;

}  // namespace layercache
