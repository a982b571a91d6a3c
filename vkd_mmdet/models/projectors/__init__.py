from .build_projector import LINEAR, ORTHOGONAL, build_projector
from .linear_adapter import LinearAdapter
from .orthogonal_projector import (
    ORTHOGONAL_MAPS,
    OrthogonalProjector,
    dense_map_columns,
    projector_weights,
)

__all__ = ['LINEAR', 'ORTHOGONAL', 'ORTHOGONAL_MAPS', 'LinearAdapter', 'OrthogonalProjector',
           'build_projector', 'dense_map_columns', 'projector_weights']
