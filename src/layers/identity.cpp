// Identity: all of its behaviour is LayerImpl's (passes_input).
#include "layercache/layers/identity.hpp"

namespace layercache {

// Compiled here once for float and double; the header declares it extern.
template class LayerImpl<Identity>;

}  // namespace layercache
