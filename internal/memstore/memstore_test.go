package memstore

import (
	"testing"

	"github.com/strata-events/strata/internal/eventstore"
	"github.com/strata-events/strata/internal/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) eventstore.Store { return New() })
}

func TestTailer(t *testing.T) {
	storetest.RunTailer(t, func(t *testing.T) storetest.TailStore { return New() })
}
