from .orthogonal_projector import (
    ORTHOGONAL_MAPS,
    OrthogonalProjector,
    dense_map_columns,
    projector_weights,
)

__all__ = ['ORTHOGONAL_MAPS', 'OrthogonalProjector', 'dense_map_columns', 'projector_weights']
